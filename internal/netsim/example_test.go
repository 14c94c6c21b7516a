package netsim_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"net/http/httptest"
	"net/url"
	"time"

	"github.com/shelterwatch/shelterwatch/internal/netsim"
	"github.com/shelterwatch/shelterwatch/video/whepclient"
)

// A WHEP player watches a camera over an emulated 4G network: its media
// goes through a UDP relay in front of the gateway's ICE port, its
// signalling through a proxy that delays each request by the round trip
// and points the answer's candidates at the relay.
func Example() {
	// The gateway under test: its HTTP base URL and ICE UDP address.
	gatewayURL, _ := url.Parse("http://127.0.0.1:8080")
	gatewayICE := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8189}

	p, err := netsim.Lookup("4g")
	if err != nil {
		log.Fatal(err)
	}
	relay, err := netsim.NewUDP(gatewayICE, p, netsim.Options{Seed: 1})
	if err != nil {
		log.Fatal(err)
	}
	defer relay.Close()
	from, to := gatewayICE.AddrPort(), relay.Addr().AddrPort()
	proxy := httptest.NewServer(netsim.NewWHEPProxy(gatewayURL, func(answer string) string {
		return netsim.RewriteCandidates(answer, from, to)
	}, p.RTT))
	defer proxy.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	player, err := whepclient.Dial(ctx, whepclient.Options{
		URL: proxy.URL + "/api/v1/cameras/hall/whep", Token: "viewer-token", Loopback: true})
	if err != nil {
		log.Fatal(err)
	}
	defer player.Close()
	if _, err := player.Keyframe(ctx); err != nil {
		log.Fatal(err)
	}
	st := relay.Stats()
	fmt.Printf("video: %d packets delivered, %d lost, %d overflowed\n", st.Down.Delivered, st.Down.Lost, st.Down.Overflow)
}
