// Package ns runs code and opens sockets inside named Linux network
// namespaces (the ones `ip netns` manages under /run/netns).
//
// A namespace switch applies to one OS thread only, so every switch here
// happens on a locked thread and is undone before the thread is unlocked.
// If switching back fails, the thread stays locked and dies with its
// goroutine rather than leaking a foreign namespace into the Go scheduler.
package ns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"

	"github.com/vishvananda/netns"
)

// Dir is where named namespaces are bind-mounted (same as iproute2).
const Dir = "/run/netns"

// ErrNotFound reports a namespace name with no entry under Dir.
var ErrNotFound = errors.New("network namespace not found")

// Exists reports whether the named namespace exists.
func Exists(name string) bool {
	h, err := netns.GetFromName(name)
	if err != nil {
		return false
	}
	h.Close()
	return true
}

// Check returns nil if the named namespace exists, or an error that says how
// to create it.
func Check(name string) error {
	if name == "" {
		return errors.New("empty namespace name")
	}
	if !Exists(name) {
		return fmt.Errorf("%w: %q (create it with `ip netns add %s`)", ErrNotFound, name, name)
	}
	return nil
}

// Create makes a new named namespace with its loopback up. It fails if the
// name is taken.
func Create(name string) error {
	if Exists(name) {
		return fmt.Errorf("network namespace %q already exists", name)
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer orig.Close()
		h, err := netns.NewNamed(name) // switches this thread into it
		if err != nil {
			if netns.Set(orig) == nil {
				runtime.UnlockOSThread()
			}
			errc <- fmt.Errorf("create network namespace %q: %w", name, err)
			return
		}
		h.Close()
		if err := netns.Set(orig); err != nil {
			errc <- err // thread stays locked and exits with the goroutine
			return
		}
		runtime.UnlockOSThread()
		errc <- nil
	}()
	if err := <-errc; err != nil {
		return err
	}
	return Do(name, func() error { return setLoopbackUp() })
}

// Delete removes a named namespace. Processes still inside keep it alive
// in the kernel, but the name is gone. Deleting a missing name is not an
// error, so teardown can be repeated.
func Delete(name string) error {
	p := filepath.Join(Dir, name)
	if _, err := os.Stat(p); os.IsNotExist(err) {
		return nil
	}
	if err := netns.DeleteNamed(name); err != nil {
		return fmt.Errorf("delete network namespace %q: %w", name, err)
	}
	return nil
}

// List returns the names of all namespaces under Dir.
func List() ([]string, error) {
	ents, err := os.ReadDir(Dir)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names, nil
}

// Do runs fn on a locked OS thread switched into the named namespace.
// Sockets and TUN devices fn creates belong to that namespace for life,
// and may be used from any goroutine afterwards.
func Do(name string, fn func() error) error {
	target, err := netns.GetFromName(name)
	if err != nil {
		return fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	defer target.Close()
	return DoHandle(target, fn)
}

// DoHandle is Do with an open namespace handle.
func DoHandle(target netns.NsHandle, fn func() error) error {
	errc := make(chan error, 1)
	// A fresh goroutine, so a thread we cannot switch back is simply
	// discarded when it exits still locked.
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer orig.Close()
		if err := netns.Set(target); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter network namespace: %w", err)
			return
		}
		var ferr error
		func() {
			defer func() {
				if r := recover(); r != nil {
					ferr = fmt.Errorf("panic in namespace: %v", r)
				}
			}()
			ferr = fn()
		}()
		if err := netns.Set(orig); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("leave network namespace: %w", err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// ListenPacket returns a function with net.ListenPacket's signature that
// opens its sockets inside the named namespace.
func ListenPacket(name string) func(network, address string) (net.PacketConn, error) {
	return func(network, address string) (net.PacketConn, error) {
		var c net.PacketConn
		err := Do(name, func() error {
			var err error
			c, err = net.ListenPacket(network, address)
			return err
		})
		return c, err
	}
}

// Listen opens a stream listener inside the named namespace.
func Listen(name, network, address string) (net.Listener, error) {
	var l net.Listener
	err := Do(name, func() error {
		var err error
		l, err = net.Listen(network, address)
		return err
	})
	return l, err
}

// Dialer returns a net.Dialer-like dial function whose sockets are created
// inside the named namespace. The connect happens there too.
func DialContext(ctx context.Context, name string, d *net.Dialer, network, address string) (net.Conn, error) {
	if d == nil {
		d = &net.Dialer{}
	}
	var c net.Conn
	err := Do(name, func() error {
		var err error
		c, err = d.DialContext(ctx, network, address)
		return err
	})
	return c, err
}
