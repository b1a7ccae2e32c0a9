// Command istio-validate runs Istio's own validation of networking.istio.io
// objects (the code behind istiod's validating webhook), which refuses more
// than the CRDs' OpenAPI schemas do: a VirtualService whose destinations all
// weigh 0, a negative weight, a mirror percentage over 100, a header regex
// that does not compile. sluice's tests run it so that nothing sluice writes
// to a VirtualService would be refused by a real Istio.
//
// Usage:
//
//	istio-validate FILE...   validate each YAML document of each FILE (- for stdin)
//	istio-validate --serve --listen 127.0.0.1:PORT --cert FILE --key FILE
//	                         serve Istio's validating webhook on /validate
//
// The first form prints one line per object and exits 1 if any is invalid.
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	multierror "github.com/hashicorp/go-multierror"
	kubeyaml "k8s.io/apimachinery/pkg/util/yaml"

	"istio.io/istio/pilot/pkg/config/kube/crd"
	"istio.io/istio/pkg/config/schema/collection"
	"istio.io/istio/pkg/config/schema/collections"
	"istio.io/istio/pkg/config/schema/resource"
	"istio.io/istio/pkg/webhooks/validation/server"
)

// domainSuffix is istiod's default; validation does not depend on it, but
// conversion records it as istiod would.
const domainSuffix = "cluster.local"

// schemas are the kinds that istiod's webhook validates: Istio's own and the
// Gateway API's.
func schemas() collection.Schemas { return collections.PilotGatewayAPI() }

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("istio-validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	serve := fs.Bool("serve", false, "serve Istio's validating webhook (AdmissionReview v1) on https://LISTEN/validate")
	listen := fs.String("listen", "127.0.0.1:9443", "with --serve: a loopback address to listen on")
	certFile := fs.String("cert", "", "with --serve: the serving certificate (PEM)")
	keyFile := fs.String("key", "", "with --serve: its private key (PEM)")
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage:\n  istio-validate FILE...   (- reads stdin)\n  istio-validate --serve --listen 127.0.0.1:PORT --cert FILE --key FILE\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *serve {
		if fs.NArg() > 0 || *certFile == "" || *keyFile == "" {
			fmt.Fprintln(stderr, "istio-validate --serve takes --listen, --cert and --key and no files")
			return 2
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		if err := serveWebhook(ctx, *listen, *certFile, *keyFile, stderr); err != nil {
			fmt.Fprintln(stderr, "istio-validate:", err)
			return 1
		}
		return 0
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return 2
	}
	code := 0
	for _, name := range fs.Args() {
		raw, err := readInput(name, stdin)
		if err != nil {
			fmt.Fprintln(stderr, "istio-validate:", err)
			return 2
		}
		results, err := validateDocuments(raw)
		for _, r := range results {
			r.print(stdout, name)
			if r.Err != nil {
				code = 1
			}
		}
		if err != nil {
			// A file that is not YAML at all is as wrong as an invalid
			// object in it.
			fmt.Fprintf(stdout, "%s: %v\n", name, err)
			code = 1
		}
	}
	return code
}

func readInput(name string, stdin io.Reader) ([]byte, error) {
	if name == "-" {
		raw, err := io.ReadAll(stdin)
		if err != nil {
			return nil, fmt.Errorf("read stdin: %w", err)
		}
		return raw, nil
	}
	raw, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("read input: %w", err)
	}
	return raw, nil
}

// result is what Istio says of one object.
type result struct {
	Kind, Namespace, Name string
	// Skipped says why the object was not validated: a kind that Istio does
	// not validate.
	Skipped  string
	Warnings []string
	Err      error
}

func (r result) print(w io.Writer, file string) {
	object := r.Name
	if r.Namespace != "" {
		object = r.Namespace + "/" + r.Name
	}
	prefix := fmt.Sprintf("%s: %s %s:", file, r.Kind, object)
	switch {
	case r.Skipped != "":
		fmt.Fprintf(w, "%s skipped: %s\n", prefix, r.Skipped)
	case r.Err != nil:
		fmt.Fprintf(w, "%s invalid: %v\n", prefix, r.Err)
	default:
		fmt.Fprintf(w, "%s ok\n", prefix)
	}
	for _, warning := range r.Warnings {
		fmt.Fprintf(w, "%s warning: %s\n", prefix, warning)
	}
}

// validateDocuments validates each document of a YAML (or JSON) stream; the
// error is for a stream that does not decode, after the documents before it.
func validateDocuments(raw []byte) ([]result, error) {
	var results []result
	dec := kubeyaml.NewYAMLOrJSONDecoder(bytes.NewReader(raw), 4096)
	for i := 1; ; i++ {
		var doc json.RawMessage
		if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
			return results, nil
		} else if err != nil {
			return results, fmt.Errorf("document %d: %w", i, err)
		}
		// "---" with nothing after it, or a document of comments.
		if len(bytes.TrimSpace(doc)) == 0 || string(doc) == "null" {
			continue
		}
		results = append(results, validateObject(doc))
	}
}

// validateObject does what istiod's webhook does with an admitted object:
// find the schema by group and kind (any version: each version of an Istio
// kind has the same schema), convert the object to Istio's internal config,
// and run the schema's validation.
func validateObject(raw []byte) result {
	var obj crd.IstioKind
	if err := json.Unmarshal(raw, &obj); err != nil {
		return result{Kind: "?", Name: "?", Err: fmt.Errorf("cannot decode configuration: %w", err)}
	}
	r := result{Kind: obj.Kind, Namespace: obj.Namespace, Name: obj.Name}
	if r.Kind == "" {
		r.Kind = "?"
	}
	gvk := obj.GroupVersionKind()
	s, ok := schemas().FindByGroupKind(resource.FromKubernetesGVK(&gvk))
	if !ok {
		r.Skipped = fmt.Sprintf("%s %s is not a kind Istio validates", obj.APIVersion, obj.Kind)
		return r
	}
	if err := topLevelFields(raw); err != nil {
		r.Err = err
		return r
	}
	cfg, err := crd.ConvertObject(s, &obj, domainSuffix)
	if err != nil {
		r.Err = fmt.Errorf("error decoding configuration: %w", err)
		return r
	}
	warnings, err := s.ValidateConfig(*cfg)
	r.Warnings = flatten(warnings)
	if err != nil {
		r.Err = fmt.Errorf("configuration is invalid: %w", err)
	}
	return r
}

// topLevelFields refuses what istiod's webhook refuses besides the spec: a
// field beside apiVersion, kind, metadata, spec and status, which the API
// server would prune and so silently drop.
func topLevelFields(raw []byte) error {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return fmt.Errorf("cannot decode configuration fields: %w", err)
	}
	for name := range fields {
		switch name {
		case "apiVersion", "kind", "metadata", "spec", "status":
		default:
			return fmt.Errorf("unknown field %q", name)
		}
	}
	return nil
}

// flatten lists the warnings one by one: Istio joins them in one error.
func flatten(err error) []string {
	if err == nil {
		return nil
	}
	if many, ok := err.(*multierror.Error); ok {
		if many == nil {
			return nil
		}
		var out []string
		for _, e := range many.Errors {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []string{err.Error()}
}

// serveWebhook serves istiod's own validation handler over HTTPS on a
// loopback address until ctx ends.
func serveWebhook(ctx context.Context, listen, certFile, keyFile string, log io.Writer) error {
	if err := loopbackOnly(listen); err != nil {
		return err
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return fmt.Errorf("load serving certificate: %w", err)
	}
	mux, err := webhookMux()
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{
		Handler:           mux,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
	}
	fmt.Fprintf(log, "istio-validate: serving Istio's validation on https://%s/validate\n", l.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(l, "", "") }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		return fmt.Errorf("shut down: %w", err)
	}
	return nil
}

// webhookMux serves istiod's validation handler on /validate, and /healthz
// for whoever waits for this process to listen.
func webhookMux() (*http.ServeMux, error) {
	mux := http.NewServeMux()
	if _, err := server.New(server.Options{Schemas: schemas(), DomainSuffix: domainSuffix, Mux: mux}); err != nil {
		return nil, fmt.Errorf("istio validation webhook: %w", err)
	}
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	return mux, nil
}

// loopbackOnly refuses an address that another machine could reach: the
// webhook trusts whoever calls it.
func loopbackOnly(listen string) error {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return fmt.Errorf("--listen %q: %w", listen, err)
	}
	if strings.EqualFold(host, "localhost") {
		return nil
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("--listen %q: not a loopback address (127.0.0.1, [::1])", listen)
	}
	return nil
}
