package stun

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gonat/gonat/internal/privtest"
)

// Debian's `stun` command (package stun-client, Vovida stund 0.97) is an RFC
// 3489 client: no magic cookie, a 128-bit transaction ID whose first byte
// numbers the test. What it does, from its source (client.cxx, stun.cxx
// stunNatType) and checked against this server:
//
//	stun HOST[:PORT] [-v] [-p SRCPORT]   (PORT defaults to 3478 and must be >= 1024)
//
// It opens two sockets, SRCPORT (random if not given) and SRCPORT+1, and
// sends, retransmitting every 150 ms until 7 silent rounds in a row (about
// 1.1 s when nothing answers):
//
//	test 1:  first socket  -> HOST:PORT, no change      -> M1, CHANGED-ADDRESS
//	test 10: first socket  -> CHANGED-ADDRESS's IP, PORT (A2:P1, not A2:P2) -> M2
//	test 2:  second socket -> HOST:PORT, CHANGE-REQUEST 0x04: change IP only,
//	         answered from A2:P1 (stund's source has the change-port half
//	         commented out; for EIF/ADF/APDF the verdict is the same)
//	test 3:  second socket -> HOST:PORT, change port, answered from A1:P2
//	test 11: first socket  -> its own M1 (hairpin: the request arrives back)
//
// It reads MAPPED-ADDRESS and CHANGED-ADDRESS (this server sends RFC 3489
// clients both, plus SOURCE-ADDRESS), prints RESPONSE-ORIGIN and
// OTHER-ADDRESS as "Unknown attribute: 32811/32812" and goes on. (It also
// accepts an XOR-MAPPED-ADDRESS, type 0x0020, tried and seen to work, but
// does not use it.) "NAT" means binding a socket to M1's IP fails on this
// host. Test 2 answered and no NAT: Open; test 1 answered, no NAT, test 2
// silent: Firewall; with NAT: M1 != M2 gives Dependent Mapping, else test 2
// answered gives Independent Filter, else test 3 answered gives Address
// Dependent Filter, else Port Dependent Filter. Then it prints "Primary: " and a verdict, a tab, a
// newline and "Return value is 0x0000XX"; the exit status is that byte XX:
//
//	verdict                                          XX    classic type
//	Open                                             0x00  open internet
//	Independent Mapping, Independent Filter          0x02  full cone (EIM/EIF)
//	Independent Mapping, Address Dependent Filter    0x04  restricted cone (EIM/ADF)
//	Independent Mapping, Port Dependent Filter       0x06  port restricted cone (EIM/APDF)
//	Dependent Mapping                                0x08  symmetric: M1 != M2, any filtering
//	Firewall                                         0x0A  not NAT, test 2 silent ("udp firewall")
//	Blocked or could not reach STUN server           0x0C  test 1 silent
//	Some unknown type error detetecting NAT type     0xEE
//	Some stun error detetecting NAT type             exit 255 (could not open its sockets)
//
// To XX it adds 0x10 when test 11 was not answered (printed ", no hairpin";
// otherwise ", will hairpin") and 0x01 when M1's port equals SRCPORT (", preserves
// ports"; otherwise ", random port"). The two suffixes are printed for the
// four NAT verdicts only, but the bits are added to all: on loopback the
// answer is "Primary: Open", 0x01 (port kept, hairpin works), exit status 1;
// with nothing listening it is "Blocked ...", 0x1C, exit status 28. So behind
// a port-preserving, non-hairpinning port restricted cone NAT expect
// "Independent Mapping, Port Dependent Filter, preserves ports, no hairpin"
// and exit status 0x17 = 23; a symmetric NAT gives 0x08 plus those bits:
// 0x08, 0x09, 0x18 or 0x19 (8, 9, 24, 25).
//
// Two things to know when reading it behind gonat. The mapping test compares
// M1 with the answer from A2:P1 only, so address-dependent and
// address-and-port-dependent mapping both read "Dependent Mapping", and the
// mapping verdict wins over filtering (an APDM/EIF NAT is "Dependent
// Mapping", not the "Full Cone" that RFC 3489 §10.1's flow would give). Its
// hairpin test sends from the mapping socket to that socket's own M1, not
// from a second socket as Probe does: on a filtering NAT it passes only if
// the NAT counts M1 among the endpoints M1 has sent to when it filters the
// hairpinned packet.
func TestDebianStunClient(t *testing.T) {
	bin := privtest.Tool(t, "stun")
	s := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, s.Addrs()[0].String(), "-v")
	out, err := cmd.CombinedOutput()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s: %v\n%s", bin, err, out)
	}
	text := string(out)
	t.Logf("exit status %d, output:\n%s", code, text)
	if !strings.Contains(text, "Primary: Open") {
		t.Errorf("verdict is not Open")
	}
	if code != 0x01 || !strings.Contains(text, "Return value is 0x000001") {
		t.Errorf("exit status %d, want 1 (open, port preserved, hairpin)", code)
	}
	for _, line := range []string{"test I = 1", "test II = 1", "test III = 1", "test I(2) = 1", "is nat  = 0", "mapped IP same = 1", "hairpin = 1"} {
		if !strings.Contains(text, line) {
			t.Errorf("verbose output lacks %q", line)
		}
	}
	// Its tests 1, 10, 2, 3 all reached the server and were answered.
	if st := s.Stats(); st.Requests < 4 || st.Responses != st.Requests || st.Malformed != 0 || st.Errors != 0 {
		t.Errorf("server stats %+v", st)
	}
}
