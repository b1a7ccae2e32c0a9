package loadtest

import (
	"fmt"
	"maps"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"
)

// The metadata keys of a call. Every other key is refused, so that a typo
// (durration: 5m) fails the call instead of running with a default.
const (
	keyURL            = "url"
	keyRate           = "rate"
	keyDuration       = "duration"
	keyConcurrency    = "concurrency"
	keyMethod         = "method"
	keyBody           = "body"
	keyExpectedStatus = "expectedStatus"
	keyMaxErrorRate   = "maxErrorRate"
	keyHost           = "host"
	keyRequestTimeout = "requestTimeout"
	// keyHeaderPrefix starts the keys of request headers: header.NAME.
	keyHeaderPrefix = "header."

	keyCmd     = "cmd"
	keyTimeout = "timeout"
)

var (
	loadKeys    = []string{keyURL, keyRate, keyDuration, keyConcurrency, keyMethod, keyBody, keyExpectedStatus, keyMaxErrorRate, keyHost, keyRequestTimeout, keyHeaderPrefix + "NAME"}
	commandKeys = []string{keyCmd, keyTimeout}
	methods     = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions}
)

// The defaults of the metadata; each is lowered to its limit when that is
// less.
const (
	defaultRate           = 10
	defaultDuration       = 10 * time.Second
	defaultConcurrency    = 4
	defaultRequestTimeout = 5 * time.Second
	defaultTimeout        = time.Minute
)

// parse reads what a call asks for from its metadata, within the limits.
func (s *Server) parse(md map[string]string) (job, error) {
	_, isLoad := md[keyURL]
	_, isCommand := md[keyCmd]
	switch {
	case isLoad && isCommand:
		return nil, fmt.Errorf("metadata has both %s and %s: a webhook either makes load or runs a command; use two webhooks for both", keyURL, keyCmd)
	case isCommand:
		return s.parseCommand(md)
	case isLoad:
		return s.parseLoad(md)
	}
	for _, k := range slices.Sorted(maps.Keys(md)) {
		if slices.Contains(loadKeys, k) || strings.HasPrefix(k, keyHeaderPrefix) {
			return nil, fmt.Errorf("metadata %s is required to make load (it has %s); it is the http or https URL to send requests to", keyURL, k)
		}
		if slices.Contains(commandKeys, k) {
			return nil, fmt.Errorf("metadata %s is required to run a command (it has %s); allowed: %s", keyCmd, k, s.cfg.Commands.names())
		}
	}
	return nil, fmt.Errorf("the webhook's metadata must have %s, to make load (with %s), or %s, to run a command (allowed: %s; with %s)",
		keyURL, strings.Join(loadKeys[1:], ", "), keyCmd, s.cfg.Commands.names(), keyTimeout)
}

func (s *Server) parseLoad(md map[string]string) (job, error) {
	lim := s.cfg.Limits
	l := &load{
		method:      http.MethodGet,
		expect:      expectation{code: http.StatusOK},
		header:      http.Header{},
		client:      s.client,
		rate:        math.Min(defaultRate, lim.MaxRate),
		duration:    min(defaultDuration, lim.MaxDuration),
		concurrency: min(defaultConcurrency, lim.MaxConcurrency),
		timeout:     min(defaultRequestTimeout, lim.MaxDuration),
	}
	// In order, so that of several mistakes the same one is told each time.
	for _, k := range slices.Sorted(maps.Keys(md)) {
		v := md[k]
		var err error
		switch k {
		case keyURL:
			l.url, err = parseURL(v)
		case keyRate:
			l.rate, err = parseRate(v, lim.MaxRate)
		case keyDuration:
			l.duration, err = parseDuration(k, v, lim.MaxDuration)
		case keyRequestTimeout:
			l.timeout, err = parseDuration(k, v, lim.MaxDuration)
		case keyConcurrency:
			l.concurrency, err = parseConcurrency(v, lim.MaxConcurrency)
		case keyMethod:
			l.method = strings.ToUpper(v)
			if !slices.Contains(methods, l.method) {
				err = fmt.Errorf("metadata %s %q is not one of %s", k, v, strings.Join(methods, ", "))
			}
		case keyBody:
			l.body = v
		case keyExpectedStatus:
			l.expect, err = parseExpectation(v)
		case keyMaxErrorRate:
			l.maxErrorRate, err = parseErrorRate(v)
		case keyHost:
			l.host = v
			if !httpguts.ValidHostHeader(v) {
				err = fmt.Errorf("metadata %s %q is not a valid Host header", k, v)
			}
		default:
			name, isHeader := strings.CutPrefix(k, keyHeaderPrefix)
			switch {
			case !isHeader:
				err = fmt.Errorf("metadata %s is unknown; a load takes %s", k, strings.Join(loadKeys, ", "))
			case !httpguts.ValidHeaderFieldName(name) || !httpguts.ValidHeaderFieldValue(v):
				err = fmt.Errorf("metadata %s: %q is not a valid header name and value", k, name+": "+v)
			case http.CanonicalHeaderKey(name) == "Host":
				err = fmt.Errorf("metadata %s: set the Host header with metadata %s", k, keyHost)
			default:
				l.header.Set(name, v)
			}
		}
		if err != nil {
			return nil, err
		}
	}
	return l, nil
}

func parseURL(v string) (*url.URL, error) {
	u, err := url.Parse(v)
	switch {
	case err != nil:
		return nil, fmt.Errorf("metadata %s %q is not a URL: %w", keyURL, v, err)
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("metadata %s %q must be an http or https URL", keyURL, v)
	case u.Host == "":
		return nil, fmt.Errorf("metadata %s %q has no host", keyURL, v)
	}
	return u, nil
}

func parseRate(v string, most float64) (float64, error) {
	r, err := strconv.ParseFloat(v, 64)
	switch {
	case err != nil || !(r > 0):
		return 0, fmt.Errorf("metadata %s %q is not a positive number of requests per second, at most %v", keyRate, v, most)
	case r > most:
		return 0, fmt.Errorf("metadata %s %v is over %v requests per second, the most this load tester sends (--max-rate)", keyRate, r, most)
	}
	return r, nil
}

func parseDuration(key, v string, most time.Duration) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	switch {
	case err != nil || d <= 0:
		return 0, fmt.Errorf("metadata %s %q is not a positive Go duration such as 30s or 2m, at most %s", key, v, most)
	case d > most:
		return 0, fmt.Errorf("metadata %s %s is over %s, the longest this load tester allows (--max-duration)", key, d, most)
	}
	return d, nil
}

func parseConcurrency(v string, most int) (int, error) {
	n, err := strconv.Atoi(v)
	switch {
	case err != nil || n < 1:
		return 0, fmt.Errorf("metadata %s %q is not a whole number from 1 to %d", keyConcurrency, v, most)
	case n > most:
		return 0, fmt.Errorf("metadata %s %d is over %d, the most requests in flight this load tester allows (--max-concurrency)", keyConcurrency, n, most)
	}
	return n, nil
}

func parseErrorRate(v string) (float64, error) {
	r, err := strconv.ParseFloat(strings.TrimSuffix(v, "%"), 64)
	if err != nil || !(r >= 0 && r <= 100) {
		return 0, fmt.Errorf("metadata %s %q is not a percentage from 0 to 100", keyMaxErrorRate, v)
	}
	return r, nil
}

// expectation is the status a good answer has: a code, or a class such as
// 2xx.
type expectation struct {
	code  int
	class int
}

func parseExpectation(v string) (expectation, error) {
	if len(v) == 3 && strings.EqualFold(v[1:], "xx") && v[0] >= '1' && v[0] <= '5' {
		return expectation{class: int(v[0] - '0')}, nil
	}
	if code, err := strconv.Atoi(v); err == nil && code >= 100 && code <= 599 {
		return expectation{code: code}, nil
	}
	return expectation{}, fmt.Errorf("metadata %s %q is not a status code from 100 to 599 or a class from 1xx to 5xx", keyExpectedStatus, v)
}

func (e expectation) matches(code int) bool {
	if e.class != 0 {
		return code/100 == e.class
	}
	return code == e.code
}

func (e expectation) String() string {
	if e.class != 0 {
		return strconv.Itoa(e.class) + "xx"
	}
	return strconv.Itoa(e.code)
}

func (s *Server) parseCommand(md map[string]string) (job, error) {
	name := md[keyCmd]
	c, ok := s.cfg.Commands[name]
	if !ok {
		return nil, fmt.Errorf("metadata %s %q is not a command this load tester runs; allowed: %s", keyCmd, name, s.cfg.Commands.names())
	}
	timeout := min(defaultTimeout, s.cfg.Limits.MaxDuration)
	for _, k := range slices.Sorted(maps.Keys(md)) {
		v := md[k]
		var err error
		switch k {
		case keyCmd:
		case keyTimeout:
			timeout, err = parseDuration(k, v, s.cfg.Limits.MaxDuration)
		default:
			err = fmt.Errorf("metadata %s is unknown; a command takes %s", k, strings.Join(commandKeys, ", "))
		}
		if err != nil {
			return nil, err
		}
	}
	return &command{Command: c, timeout: timeout}, nil
}
