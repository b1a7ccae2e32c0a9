package promconn

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"
	"unicode"

	promapi "github.com/prometheus/client_golang/api"
)

// explainingClient makes the errors of the Prometheus API client say what
// happened. By itself the client reports "client_error: client error: 401"
// for refused credentials and "client error: 400" for an http:// address of a
// TLS server, and a failed TLS handshake without a word about the CA bundle.
type explainingClient struct {
	promapi.Client
	address     string // redacted
	credentials bool
	caBundle    bool
	plain       bool // the address is http://
	timeout     time.Duration
}

// maxBodyExcerpt bounds how much of an error page goes into an error.
const maxBodyExcerpt = 200

func (c *explainingClient) Do(ctx context.Context, req *http.Request) (*http.Response, []byte, error) {
	resp, body, err := c.Client.Do(ctx, req)
	if err != nil {
		return resp, body, c.transportError(err)
	}
	// Prometheus' own answers, errors too (a bad query, a timeout), are JSON,
	// which the API client reads; error pages of proxies and auth layers are
	// not. A success is only glanced at: it may be large.
	if resp.StatusCode/100 == 2 {
		if trimmed := bytes.TrimSpace(body); len(trimmed) == 0 || trimmed[0] == '{' {
			return resp, body, nil
		}
	} else if isAPIResponse(body) {
		return resp, body, nil
	}
	// The response goes back with the error: the API client retries some
	// statuses (405, 403) of a POST as a GET.
	return resp, body, c.statusError(resp, body)
}

func (c *explainingClient) transportError(err error) error {
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		// It repeats the whole request URL, while the address says enough.
		err = urlErr.Err
	}
	var unknownCA x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	switch {
	case errors.As(err, &unknownCA) && c.caBundle:
		return fmt.Errorf("%s: %w (the CA bundle does not hold the CA that signed the server's certificate)", c.address, err)
	case errors.As(err, &unknownCA):
		return fmt.Errorf("%s: %w (no CA bundle is set, so only the system's CAs are trusted)", c.address, err)
	case errors.As(err, &hostErr):
		return fmt.Errorf("%s: %w (the server's certificate is not for the host of the address)", c.address, err)
	case urlErr != nil && urlErr.Timeout():
		return fmt.Errorf("%s: no answer within the timeout of %s: %w", c.address, c.timeout, err)
	case c.plain && notHTTP(err):
		return fmt.Errorf("%s: %w (if the server wants TLS, the address must start with https://)", c.address, err)
	}
	return fmt.Errorf("%s: %w", c.address, err)
}

func (c *explainingClient) statusError(resp *http.Response, body []byte) error {
	msg := fmt.Sprintf("%s: answered %s", c.address, resp.Status)
	if text := excerpt(body); text != "" && !strings.EqualFold(text, http.StatusText(resp.StatusCode)) {
		msg += ": " + text
	}
	switch code := resp.StatusCode; {
	case code == http.StatusUnauthorized && c.credentials:
		msg += " (the credentials were refused)"
	case code == http.StatusUnauthorized:
		msg += " (it wants credentials, and none are set)"
	case code == http.StatusForbidden:
		msg += " (these credentials may not query it)"
	case code == http.StatusNotFound:
		msg += " (no Prometheus API at this address: it is the base URL that /api/v1/query follows, such as https://mimir.example.com/prometheus)"
	case code/100 == 3:
		msg += fmt.Sprintf(" (redirects are not followed, so that the credentials go to no other host; the Location was %q)", resp.Header.Get("Location"))
	case code/100 == 2:
		msg += " (that is not the Prometheus API: is the address its base URL?)"
	}
	return errors.New(msg)
}

// notHTTP tells the ways a TLS server may answer plain HTTP: a TLS alert,
// which is no HTTP response, or a closed connection. Go's servers answer 400
// and close at once, so the client often sees the reset, not the answer.
func notHTTP(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		strings.Contains(err.Error(), "malformed HTTP response")
}

// isAPIResponse tells a Prometheus API answer, a JSON object with a status,
// from an error page.
func isAPIResponse(body []byte) bool {
	var r struct {
		Status string `json:"status"`
	}
	return json.Unmarshal(body, &r) == nil && r.Status != ""
}

// excerpt is the first line of an error page, printable and short.
func excerpt(body []byte) string {
	line, _, _ := strings.Cut(strings.TrimSpace(string(body)), "\n")
	line = strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return -1
	}, strings.TrimSpace(line))
	if r := []rune(line); len(r) > maxBodyExcerpt {
		line = string(r[:maxBodyExcerpt]) + "…"
	}
	return line
}
