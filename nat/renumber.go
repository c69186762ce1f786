package nat

import (
	"net/netip"
	"slices"
	"time"
)

// Rebind moves every live mapping to a new external port, keeping its
// sessions and counters (table.Table.Rebind); with ext, one address for
// each external address, to new external addresses too. The nat66
// mappings move to new ports of their external6 address. It reports how
// many mappings moved.
func (e *Engine) Rebind(ext []netip.Addr, now time.Time) (int, error) {
	tab := e.shared.Lock()
	moved, err := tab.Rebind(ext, now)
	if err == nil {
		if ext != nil {
			e.setExternalLocked(ext)
		}
		// Fragments wait for mappings by their old endpoints.
		e.frags = fragCache{}
		e.held.reset()
	}
	e.shared.Unlock()
	if err != nil {
		return 0, err
	}
	// Later nat66 fragments keep their way in: it names the inside host,
	// not the port.
	moved6, err := e.shared6.Lock().Rebind(nil, now)
	e.shared6.Unlock()
	return moved + moved6, err
}

// Reboot forgets every mapping, as Flush does, and with ext (one address
// for each external address) takes new external addresses.
func (e *Engine) Reboot(ext []netip.Addr, now time.Time) error {
	if ext == nil {
		e.Flush()
		return nil
	}
	tab := e.shared.Lock()
	tab.Flush()
	_, err := tab.Rebind(ext, now)
	if err == nil {
		e.setExternalLocked(ext)
	}
	e.frags = fragCache{}
	e.held.reset()
	e.shared.Unlock()
	e.fw.reset()
	e.flush66()
	return err
}

// setExternalLocked puts ext in place of the external addresses, as many,
// wherever the engine keeps them. The whole engine is locked.
func (e *Engine) setExternalLocked(ext []netip.Addr) {
	e.external = slices.Clone(ext)
	e.cfg.Table.External = slices.Clone(ext)
	exts := make(map[netip.Addr]uint32, len(ext))
	for i, a := range ext {
		exts[a] = uint32(i)
	}
	e.extIndex = newAddrIndex(exts)
	if e.ownHasExternal {
		v := *e.in.Load()
		v.ownMasks = e.withExternal(v.ownMasks, v.numNets, ext)
		e.in.Store(&v)
	}
}
