package icejudge

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/pion/ice/v4"
	pstun "github.com/pion/stun/v4"
)

// agentTimeout bounds an agent's connection attempt: pion/ice checks every
// pair many times within it, and a lab's round trips are sub-millisecond.
const agentTimeout = 10 * time.Second

// agentMain runs one ICE agent as ICEJUDGE_NAME towards ICEJUDGE_PEER,
// gathering host and server-reflexive candidates from ICEJUDGE_STUN,
// signalling through files in ICEJUDGE_DIR, and prints an agentReport.
// The agent whose name sorts first is controlling.
func agentMain() int {
	name, peer := os.Getenv("ICEJUDGE_NAME"), os.Getenv("ICEJUDGE_PEER")
	r := agentReport{Name: name}
	if err := agent(&r, name, peer, os.Getenv("ICEJUDGE_DIR"), os.Getenv("ICEJUDGE_STUN")); err != nil {
		r.Error = err.Error()
	}
	json.NewEncoder(os.Stdout).Encode(r)
	return 0
}

func agent(r *agentReport, name, peer, dir, stunAddr string) error {
	uri, err := pstun.ParseURI("stun:" + stunAddr)
	if err != nil {
		return err
	}
	a, err := ice.NewAgentWithOptions(
		ice.WithUrls([]*pstun.URI{uri}),
		ice.WithNetworkTypes([]ice.NetworkType{ice.NetworkTypeUDP4}),
		ice.WithCandidateTypes([]ice.CandidateType{ice.CandidateTypeHost, ice.CandidateTypeServerReflexive}),
		ice.WithMulticastDNSMode(ice.MulticastDNSModeDisabled),
	)
	if err != nil {
		return err
	}
	defer a.Close()
	gathered := make(chan struct{})
	var cands []string
	if err := a.OnCandidate(func(c ice.Candidate) {
		if c == nil {
			close(gathered)
			return
		}
		cands = append(cands, c.Marshal())
	}); err != nil {
		return err
	}
	if err := a.GatherCandidates(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), agentTimeout)
	defer cancel()
	select {
	case <-gathered:
	case <-ctx.Done():
		return fmt.Errorf("gathering candidates: %w", ctx.Err())
	}
	ufrag, pwd, err := a.GetLocalUserCredentials()
	if err != nil {
		return err
	}
	if err := writeOffer(dir, name, offer{Ufrag: ufrag, Pwd: pwd, Candidates: cands}); err != nil {
		return err
	}
	o, err := readOffer(ctx, dir, peer)
	if err != nil {
		return err
	}
	for _, s := range o.Candidates {
		c, err := ice.UnmarshalCandidate(s)
		if err != nil {
			return fmt.Errorf("peer candidate %q: %w", s, err)
		}
		if err := a.AddRemoteCandidate(c); err != nil {
			return err
		}
	}
	var conn *ice.Conn
	if name < peer {
		conn, err = a.Dial(ctx, o.Ufrag, o.Pwd)
	} else {
		conn, err = a.Accept(ctx, o.Ufrag, o.Pwd)
	}
	if err != nil {
		return fmt.Errorf("ice: %w", err)
	}
	r.Connected = true
	if p, err := a.GetSelectedCandidatePair(); err == nil && p != nil {
		r.Pair = p.String()
	}
	// A message each way over the selected pair.
	if _, err := conn.Write([]byte("hello from " + name)); err != nil {
		return err
	}
	buf := make([]byte, 1500)
	_ = conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	n, err := conn.Read(buf)
	if err != nil {
		return fmt.Errorf("connected, but no message: %w", err)
	}
	r.Message = string(buf[:n])
	// Let the peer read ours before this agent closes.
	time.Sleep(300 * time.Millisecond)
	return nil
}
