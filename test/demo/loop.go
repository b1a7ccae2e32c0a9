package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"sluice.dev/sluice/test/meshsim/mesh"
)

// loop is the demo's version of the lesson's curl loop: it asks for the
// host through the mesh every period and keeps the answers of the last
// window.
type loop struct {
	window  time.Duration
	mu      sync.Mutex
	answers []answer
}

type answer struct {
	at   time.Time
	text string
}

// share is the part of the recent answers that said one thing.
type share struct {
	text     string
	fraction float64
}

func startLoop(ctx context.Context, addr, host string, period, window time.Duration) *loop {
	l := &loop{window: window}
	go func() {
		tick := time.NewTicker(period)
		defer tick.Stop()
		for {
			l.ask(ctx, addr, host)
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return l
}

func (l *loop) ask(ctx context.Context, addr, host string) {
	r, err := ask(ctx, addr, host, nil)
	text := r.text
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		text = "error: " + err.Error()
	}
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.answers = append(l.answers, answer{now, text})
	cut := slices.IndexFunc(l.answers, func(a answer) bool { return now.Sub(a.at) <= l.window })
	l.answers = l.answers[cut:]
}

// reply is what the mesh answered to one request.
type reply struct {
	// text is the body, after the status code if it is not 200.
	text string
	// workload is the Deployment that answered, by the mesh's
	// X-Meshsim-Workload: how the demo tells a canary from its primary
	// whatever their messages.
	workload string
}

// ask sends one request for host, with header, through the mesh at addr.
func ask(ctx context.Context, addr, host string, header http.Header) (reply, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/", nil)
	if err != nil {
		return reply{}, err
	}
	req.Host = host
	maps.Copy(req.Header, header)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{}, fmt.Errorf("read the answer: %w", err)
	}
	r := reply{text: strings.TrimSpace(string(body))}
	if resp.StatusCode != http.StatusOK {
		r.text = fmt.Sprintf("%d %s", resp.StatusCode, r.text)
	}
	_, r.workload, _ = strings.Cut(resp.Header.Get(mesh.HeaderWorkload), "/")
	return r, nil
}

// shares of the answers in the window, the most frequent first.
func (l *loop) shares() []share {
	l.mu.Lock()
	defer l.mu.Unlock()
	counts := map[string]int{}
	for _, a := range l.answers {
		counts[a.text]++
	}
	var out []share
	for text, n := range counts {
		out = append(out, share{text, float64(n) / float64(len(l.answers))})
	}
	slices.SortFunc(out, func(a, b share) int {
		return cmp.Or(cmp.Compare(b.fraction, a.fraction), cmp.Compare(a.text, b.text))
	})
	return out
}

// only reports whether every answer in the window said text.
func (l *loop) only(text string) bool {
	s := l.shares()
	return len(s) == 1 && s[0].text == text
}
