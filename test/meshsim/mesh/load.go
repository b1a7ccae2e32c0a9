package mesh

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Client is a kind of client in the background load: Share of the
// generated requests, 0..1, carry Header. It is how an A/B analysis gets
// requests that its header or cookie match takes, with no HTTP client.
type Client struct {
	Share  float64
	Header http.Header
}

// String is the form ParseClient reads.
func (c Client) String() string {
	var lines []string
	for name, values := range c.Header {
		for _, v := range values {
			lines = append(lines, name+": "+v)
		}
	}
	slices.Sort(lines)
	return strings.Join(lines, ", ") + " @" + strconv.FormatFloat(c.Share*100, 'f', -1, 64) + "%"
}

var headerName = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

// ParseClient reads a Client as "NAME: VALUE @PERCENT%", such as
// "x-canary: insider @20%" or "cookie: canary=always @10%".
func ParseClient(s string) (Client, error) {
	const form = `want "NAME: VALUE @PERCENT%", such as "x-canary: insider @20%"`
	at := strings.LastIndex(s, "@")
	if at < 0 {
		return Client{}, fmt.Errorf("client %q: no @PERCENT%%: %s", s, form)
	}
	share, err := parsePercent(strings.TrimSpace(s[at+1:]))
	if err != nil {
		return Client{}, fmt.Errorf("client %q: %w: %s", s, err, form)
	}
	name, value, ok := strings.Cut(s[:at], ":")
	name, value = strings.TrimSpace(name), strings.TrimSpace(value)
	if !ok || !headerName.MatchString(name) {
		return Client{}, fmt.Errorf("client %q: no header name followed by a colon: %s", s, form)
	}
	return Client{Share: share, Header: http.Header{http.CanonicalHeaderKey(name): {value}}}, nil
}

// parsePercent reads "20%" as 0.2.
func parsePercent(s string) (float64, error) {
	number, ok := strings.CutSuffix(s, "%")
	if !ok {
		return 0, fmt.Errorf("share %q is not a percentage", s)
	}
	p, err := strconv.ParseFloat(strings.TrimSpace(number), 64)
	if err != nil || p <= 0 || p > 100 {
		return 0, fmt.Errorf("share %q is not a percentage above 0 and at most 100", s)
	}
	return p / 100, nil
}

// ValidateClients checks that each share is above 0 and that they add up to
// at most all the requests; the rest carry no extra header.
func ValidateClients(clients []Client) error {
	total := 0.0
	for _, c := range clients {
		if !(c.Share > 0 && c.Share <= 1) {
			return fmt.Errorf("client %s: share %g is not above 0 and at most 1", c, c.Share)
		}
		total += c.Share
	}
	// A little slack for shares such as 3 × 33.34% that are meant as all.
	if total > 1+1e-9 {
		return errors.New("clients' shares add up to more than 100%")
	}
	return nil
}

// header is the header of a random request: a client's by its share, or
// none.
func header(clients []Client) http.Header {
	n := rand.Float64()
	for _, c := range clients {
		if n < c.Share {
			return c.Header
		}
		n -= c.Share
	}
	return nil
}

// Generate sends rps requests per second through every VirtualService and
// every HTTPRoute that a client can reach (see streams), a share of them
// with the headers of clients, without HTTP and without waiting out the
// latency, so that analysis has telemetry without a client. It runs until
// ctx ends.
func (m *Mesh) Generate(ctx context.Context, rps int, clients []Client) {
	const ticks = 10 // per second
	tick := time.NewTicker(time.Second / ticks)
	defer tick.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		streams, err := m.streams(ctx)
		if err != nil {
			continue
		}
		// Spread rps over the ticks of a second, the remainder on the first.
		count := rps / ticks
		if n%ticks == 0 {
			count += rps % ticks
		}
		for _, s := range streams {
			for range count {
				_, _ = m.follow(ctx, s.rules, Request{Host: s.host, Path: "/", Header: header(clients)})
			}
		}
	}
}
