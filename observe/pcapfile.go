package observe

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// createCaptureFile creates the capture file at path, readable by its
// owner only (packets carry what hosts send), without ever opening what
// was there before.
//
// A symbolic link at path is refused: it may point at a file the user
// never meant to overwrite, such as one an unprivileged user planted in a
// shared directory for gonat, run as root, to clobber. An existing
// regular file is replaced, as before, since runs that reuse one capture
// path are common, but not by truncating it: the file is made under a
// fresh name in the same directory (O_CREAT|O_EXCL, which never follows a
// link) and renamed over path, and rename replaces a link or hard link
// put there meanwhile instead of writing through it.
func createCaptureFile(path string) (*os.File, error) {
	switch fi, err := os.Lstat(path); {
	case err == nil && fi.Mode()&fs.ModeSymlink != 0:
		target, _ := os.Readlink(path)
		return nil, fmt.Errorf("%s is a symbolic link (to %s); refusing to write a capture through it: remove it or give another path", path, target)
	case err == nil && !fi.Mode().IsRegular():
		return nil, fmt.Errorf("%s exists and is not a regular file (%s); give another path", path, fi.Mode().Type())
	case err != nil && !os.IsNotExist(err):
		return nil, err
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".*.tmp") // mode 0600
	if err != nil {
		return nil, err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	return f, nil
}
