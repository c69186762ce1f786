package tun

// VirtioDevice is a Device whose packets carry a virtio-net header
// (offload.VirtioHdr): Read puts each packet's header in the
// offload.VirtioHdrLen bytes before offset, and Write takes it from
// there, so offset must be at least offload.VirtioHdrLen. Reads may
// return GSO super-packets and packets with partial checksums; writes
// may pass them on.
type VirtioDevice interface {
	Device
	// VirtioHdr reports whether packets carry the header; fixed for the
	// device's life.
	VirtioHdr() bool
	// USO reports whether Write takes UDP super-packets (GSOUDPL4):
	// many datagrams of one flow in one write, cut apart by the kernel
	// (Linux 6.2+).
	USO() bool
}

// HasVirtioHdr reports whether d's packets carry a virtio-net header.
func HasVirtioHdr(d Device) bool {
	v, ok := d.(VirtioDevice)
	return ok && v.VirtioHdr()
}
