package header

import "encoding/binary"

// FragmentIPv4 writes into dst the fragment of IPv4 packet b that starts
// at byte from of b's payload, for a link of MTU mtu, as a router
// fragments a datagram whose DF bit is clear (RFC 791 section 3.2, RFC
// 1812 section 5.2.6). It returns the fragment's length and where the
// next one starts; b's payload is done when next reaches its length.
// Call it with from 0 first, then with each next.
//
// The first fragment carries b's whole header; later ones only the
// options whose copied flag is set (RFC 791: security, source routes),
// padded to a 4-byte boundary. Every fragment but the last carries a
// multiple of 8 payload bytes and More Fragments; the last keeps b's own
// More Fragments, so b may itself be a fragment. Offsets count from b's,
// the identification is b's, and each header checksum is computed.
//
// It returns 0 when dst cannot hold the fragment, when mtu leaves no room
// for 8 payload bytes behind the header, or when b's header is not whole
// (decode b first). It does not allocate.
func FragmentIPv4(dst, b []byte, mtu, from int) (n, next int) {
	if len(b) < IPv4MinSize {
		return 0, from
	}
	ip := IPv4(b)
	ihl, total := ip.HeaderLen(), int(ip.TotalLen())
	if ihl < IPv4MinSize || total < ihl || total > len(b) {
		return 0, from
	}
	hl := ihl
	if from > 0 {
		hl = copiedOptionsLen(b[IPv4MinSize:ihl])
	}
	size := (mtu - hl) &^ 7
	if size < 8 || from >= total-ihl && from > 0 {
		return 0, from
	}
	end := min(from+size, total-ihl)
	n = hl + end - from
	if n > len(dst) {
		return 0, from
	}
	if from == 0 {
		copy(dst, b[:ihl])
	} else {
		copy(dst, b[:IPv4MinSize])
		writeCopiedOptions(dst[IPv4MinSize:hl], b[IPv4MinSize:ihl])
		dst[ipVersIHL] = 4<<4 | uint8(hl>>2)
	}
	copy(dst[hl:n], b[ihl+from:ihl+end])
	f := IPv4(dst[:n])
	ff := binary.BigEndian.Uint16(b[ipFlagsFrag:])
	off := ff&ipFragOffMask + uint16(from>>3)
	flags := ff & ipFlagMF // DF is clear, or the datagram could not be cut
	if end < total-ihl {
		flags = ipFlagMF
	}
	binary.BigEndian.PutUint16(f[ipFlagsFrag:], flags|off)
	f.SetTotalLen(uint16(n))
	f.SetChecksum(0)
	f.SetChecksum(Checksum(f[:hl], 0))
	return n, end
}

// IPv4 option types (RFC 791 section 3.1): end of list and no-operation
// are one byte each; the high bit of a type is its copied flag.
const (
	ipOptEnd    = 0
	ipOptNop    = 1
	ipOptCopied = 0x80
)

// copiedOptionsLen is the header length of a later fragment whose first
// carries options opts: 20 bytes and the copied options, padded to 4.
func copiedOptionsLen(opts []byte) int {
	n := 0
	walkOptions(opts, func(o []byte) {
		if o[0]&ipOptCopied != 0 {
			n += len(o)
		}
	})
	return IPv4MinSize + (n+3)&^3
}

// writeCopiedOptions writes the copied options of opts into dst, sized
// by copiedOptionsLen, padding the rest with end-of-list bytes.
func writeCopiedOptions(dst, opts []byte) {
	n := 0
	walkOptions(opts, func(o []byte) {
		if o[0]&ipOptCopied != 0 {
			n += copy(dst[n:], o)
		}
	})
	clear(dst[n:])
}

// walkOptions calls fn with each option in opts, stopping at end of list
// or at an option whose length runs past the header.
func walkOptions(opts []byte, fn func(o []byte)) {
	for i := 0; i < len(opts); {
		switch opts[i] {
		case ipOptEnd:
			return
		case ipOptNop:
			i++
			continue
		}
		if i+1 >= len(opts) || opts[i+1] < 2 || i+int(opts[i+1]) > len(opts) {
			return
		}
		fn(opts[i : i+int(opts[i+1])])
		i += int(opts[i+1])
	}
}
