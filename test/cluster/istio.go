package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	networkingv1 "istio.io/api/networking/v1"
	istiov1 "istio.io/client-go/pkg/apis/networking/v1"
	istioclient "istio.io/client-go/pkg/clientset/versioned"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"sluice.dev/sluice/certs"
)

const (
	// istioValidate is the binary (test/tools/istio) and the process name of
	// Istio's own validation.
	istioValidate = "istio-validate"
	// IstioWebhookConfig is the ValidatingWebhookConfiguration through which
	// the API server asks istio-validate, as a mesh's asks istiod.
	IstioWebhookConfig = "sluice-test-istio-validation"
	istioWebhookName   = "validation.istio.sluice.dev"
	// istioRefusal starts every refusal of Istio's webhook for an invalid
	// spec.
	istioRefusal = "configuration is invalid: "
)

// startIstioValidation runs Istio's validating webhook (istiod's own code, in
// istio-validate) on loopback and makes the API server call it for every
// create and update of Istio's traffic objects, as a cluster with Istio
// does: the CRDs' schemas take a VirtualService that Istio would refuse.
func (c *Cluster) startIstioValidation(ctx context.Context) error {
	serving, err := c.ca.Issue(certs.Request{CommonName: istioValidate, Hosts: []string{"127.0.0.1"}})
	if err != nil {
		return fmt.Errorf("serving certificate: %w", err)
	}
	certFile, keyFile, err := serving.WriteFiles(c.Dir, istioValidate)
	if err != nil {
		return fmt.Errorf("serving certificate: %w", err)
	}
	port, err := FreePort()
	if err != nil {
		return err
	}
	err = c.start(istioValidate, istioValidate,
		"--serve", "--listen="+hostPort(port), "--cert="+certFile, "--key="+keyFile)
	if err != nil {
		return err
	}
	if err := c.registerIstioWebhook(ctx, "https://"+hostPort(port)+"/validate"); err != nil {
		return err
	}
	return c.waitReady(ctx, istioValidate, c.istioRefusesABadRoute)
}

// registerIstioWebhook creates the webhook configuration, or points one that
// a cluster kept in the same folder left to this run's port and CA.
func (c *Cluster) registerIstioWebhook(ctx context.Context, url string) error {
	cs, err := kubernetes.NewForConfig(c.admin)
	if err != nil {
		return err
	}
	want := &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: IstioWebhookConfig},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name:         istioWebhookName,
			ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: c.ca.CertPEM()},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
				Rule: admissionregistrationv1.Rule{
					APIGroups:   []string{"networking.istio.io"},
					APIVersions: []string{"*"},
					Resources:   []string{"virtualservices", "destinationrules", "gateways"},
				},
			}},
			// A write that Istio would refuse must fail the test that made
			// it, also when the webhook does not answer.
			FailurePolicy:           ptr.To(admissionregistrationv1.Fail),
			SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNone),
			AdmissionReviewVersions: []string{"v1"},
		}},
	}
	vwcs := cs.AdmissionregistrationV1().ValidatingWebhookConfigurations()
	_, err = vwcs.Create(ctx, want, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		var got *admissionregistrationv1.ValidatingWebhookConfiguration
		if got, err = vwcs.Get(ctx, IstioWebhookConfig, metav1.GetOptions{}); err == nil {
			want.ResourceVersion = got.ResourceVersion
			_, err = vwcs.Update(ctx, want, metav1.UpdateOptions{})
		}
	}
	if err != nil {
		return fmt.Errorf("register the webhook %s: %w", IstioWebhookConfig, err)
	}
	return nil
}

// istioRefusesABadRoute is ready once the API server refuses, in a dry run, a
// VirtualService that the CRD takes and Istio does not (all destinations
// weigh 0): then the API server knows the webhook, reaches it, trusts its
// certificate and gets Istio's answer.
func (c *Cluster) istioRefusesABadRoute(ctx context.Context) error {
	ic, err := istioclient.NewForConfig(c.admin)
	if err != nil {
		return err
	}
	vs := &istiov1.VirtualService{
		ObjectMeta: metav1.ObjectMeta{Name: "istio-validate-probe", Namespace: metav1.NamespaceDefault},
		Spec: networkingv1.VirtualService{
			Hosts: []string{"probe"},
			Http: []*networkingv1.HTTPRoute{{Route: []*networkingv1.HTTPRouteDestination{
				{Destination: &networkingv1.Destination{Host: "probe-a"}, Weight: 0},
				{Destination: &networkingv1.Destination{Host: "probe-b"}, Weight: 0},
			}}},
		},
	}
	_, err = ic.NetworkingV1().VirtualServices(vs.Namespace).Create(ctx, vs, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	switch {
	case err == nil:
		return errors.New("a VirtualService whose destinations all weigh 0 was accepted: the API server does not call the webhook yet")
	case !strings.Contains(err.Error(), istioRefusal):
		return fmt.Errorf("dry-run create of a bad VirtualService: %w", err)
	}
	return nil
}

// IstioValidate runs Istio's own validation (istio-validate, which `make
// tools` builds) over YAML files, such as the golden VirtualServices that
// sluice writes, and returns an error naming each object Istio refuses. It
// needs no cluster.
func IstioValidate(ctx context.Context, files ...string) error {
	_, err := IstioValidateOutput(ctx, files...)
	return err
}

// IstioValidateOutput is IstioValidate that also returns what istio-validate
// printed: one line per object ("FILE: KIND NAMESPACE/NAME: ok", "...:
// invalid: ...", "...: skipped: ...") and one per warning.
func IstioValidateOutput(ctx context.Context, files ...string) (string, error) {
	if len(files) == 0 {
		return "", errors.New("istio-validate: no files")
	}
	bin := filepath.Join(DefaultBinDir(), istioValidate)
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("istio-validate: %w; build it with `make tools` (test/tools/install.sh)", err)
	}
	var stdout, stderr strings.Builder
	cmd := exec.CommandContext(ctx, bin, files...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	out := stdout.String()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return out, nil
	case errors.As(err, &exit) && exit.ExitCode() == 1:
		var refused []string
		for line := range strings.Lines(out) {
			if !strings.HasSuffix(strings.TrimSpace(line), ": ok") && !strings.Contains(line, ": warning: ") &&
				!strings.Contains(line, ": skipped: ") {
				refused = append(refused, strings.TrimSpace(line))
			}
		}
		return out, fmt.Errorf("refused by Istio's validation:\n%s", strings.Join(refused, "\n"))
	default:
		return out, fmt.Errorf("istio-validate %s: %w: %s", strings.Join(files, " "), err, strings.TrimSpace(stderr.String()))
	}
}
