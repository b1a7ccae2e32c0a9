package image

import (
	"bytes"
	"encoding/pem"

	"golang.org/x/crypto/x509roots/fallback/bundle"
)

// CABundlePath is where the image keeps its CA certificates: the first file
// Go's crypto/x509 reads on Linux, so the shifter trusts them (an HTTPS
// Prometheus, a webhook receiver) without SSL_CERT_FILE.
const CABundlePath = "etc/ssl/certs/ca-certificates.crt"

// CABundle is the PEM bundle of the Mozilla roots that the pinned module
// golang.org/x/crypto/x509roots/fallback carries, in its order: the same bytes
// on every build machine, unlike the builder's own /etc/ssl/certs. A root with
// a constraint (such as a distrust date) is left out, since a PEM file cannot
// say it; bump the module to refresh the roots.
func CABundle() []byte {
	var buf bytes.Buffer
	for root := range bundle.Roots() {
		if root.Constraint != nil {
			continue
		}
		// Encoding to a bytes.Buffer cannot fail.
		_ = pem.Encode(&buf, &pem.Block{Type: "CERTIFICATE", Bytes: root.Certificate})
	}
	return buf.Bytes()
}
