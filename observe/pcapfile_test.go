package observe

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A capture file is its owner's alone, a symbolic link at its path is
// refused with its target untouched, and a file already there is
// replaced without writing through it (a hard link to it keeps its
// bytes).
func TestCreatePcapSafely(t *testing.T) {
	const secret = "root's file\n"
	t.Run("new file is 0600", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "in.pcap")
		p, err := CreatePcap(path)
		if err != nil {
			t.Fatal(err)
		}
		p.Close()
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); perm != 0o600 {
			t.Errorf("mode %v, want 0600", perm)
		}
		if fi.Size() != 24 {
			t.Errorf("size %d, want 24 (the pcap file header)", fi.Size())
		}
		leftovers(t, filepath.Dir(path), "in.pcap")
	})
	t.Run("symlink refused", func(t *testing.T) {
		dir := t.TempDir()
		target := filepath.Join(dir, "target")
		if err := os.WriteFile(target, []byte(secret), 0o644); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "in.pcap")
		if err := os.Symlink(target, path); err != nil {
			t.Fatal(err)
		}
		p, err := CreatePcap(path)
		if err == nil {
			p.Close()
			t.Fatal("CreatePcap over a symbolic link: no error")
		}
		if !strings.Contains(err.Error(), "symbolic link") {
			t.Errorf("error %q does not say why", err)
		}
		if b, _ := os.ReadFile(target); string(b) != secret {
			t.Errorf("the link's target changed to %q", b)
		}
		if fi, err := os.Lstat(path); err != nil || fi.Mode()&os.ModeSymlink == 0 {
			t.Errorf("the link itself changed: %v %v", fi, err)
		}
		leftovers(t, dir, "in.pcap", "target")
	})
	t.Run("dangling symlink refused", func(t *testing.T) {
		dir := t.TempDir()
		target := filepath.Join(dir, "would-be-created")
		path := filepath.Join(dir, "in.pcap")
		if err := os.Symlink(target, path); err != nil {
			t.Fatal(err)
		}
		if p, err := CreatePcap(path); err == nil {
			p.Close()
			t.Fatal("CreatePcap over a dangling symbolic link: no error")
		}
		if _, err := os.Lstat(target); !os.IsNotExist(err) {
			t.Errorf("the link's target was created: %v", err)
		}
	})
	t.Run("existing file replaced, hard link untouched", func(t *testing.T) {
		dir := t.TempDir()
		other := filepath.Join(dir, "other")
		if err := os.WriteFile(other, []byte(secret), 0o644); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "in.pcap")
		if err := os.Link(other, path); err != nil {
			t.Fatal(err)
		}
		p, err := CreatePcap(path)
		if err != nil {
			t.Fatal(err)
		}
		p.Close()
		if b, _ := os.ReadFile(other); string(b) != secret {
			t.Errorf("the file hard-linked to the path changed to %q", b)
		}
		if fi, err := os.Stat(path); err != nil || fi.Size() != 24 || fi.Mode().Perm() != 0o600 {
			t.Errorf("the capture: %v %v; want a 24-byte 0600 file", fi, err)
		}
		leftovers(t, dir, "in.pcap", "other")
	})
	t.Run("directory refused", func(t *testing.T) {
		if p, err := CreatePcap(t.TempDir()); err == nil {
			p.Close()
			t.Fatal("CreatePcap on a directory: no error")
		}
	})
}

// leftovers fails if dir holds anything but want (a temporary file left
// behind).
func leftovers(t *testing.T, dir string, want ...string) {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("%s holds %v, want %v", dir, got, want)
	}
}
