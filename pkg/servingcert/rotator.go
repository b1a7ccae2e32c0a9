package servingcert

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/go-logr/logr"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"sluice.dev/sluice/certs"
)

// Rotator keeps the Secret and the CA bundle of the webhook configuration
// current, and serves the Secret's certificate. Every replica runs one: their
// writes are conditioned on the version they read, so the first one wins and
// the others find nothing left to do.
type Rotator struct {
	Client client.Client
	// Secret holds the State; it must exist (the install ships it empty), so
	// that RBAC can grant access to it by name.
	Secret types.NamespacedName
	// Webhook is the MutatingWebhookConfiguration whose CA bundle is kept.
	Webhook string
	Policy  Policy
	Log     logr.Logger
	// Now is the clock; time.Now when nil.
	Now func() time.Time

	mu         sync.Mutex
	servingPEM []byte
	serving    *tls.Certificate
	trusted    bool
}

// CacheOptions limit a manager's cache to the Secret and the webhook
// configuration, so that RBAC can grant list and watch by resource name.
func CacheOptions(secret types.NamespacedName, webhook string) cache.Options {
	return cache.Options{ByObject: map[client.Object]cache.ByObject{
		&corev1.Secret{}: {
			Namespaces: map[string]cache.Config{secret.Namespace: {}},
			Field:      fields.OneTermEqualSelector("metadata.name", secret.Name),
		},
		&admissionregistrationv1.MutatingWebhookConfiguration{}: {
			Field: fields.OneTermEqualSelector("metadata.name", webhook),
		},
	}}
}

// SetupWithManager registers the rotator with mgr, whose cache must be made
// with CacheOptions.
func (r *Rotator) SetupWithManager(mgr ctrl.Manager) error {
	toSecret := handler.EnqueueRequestsFromMapFunc(func(context.Context, client.Object) []reconcile.Request {
		return []reconcile.Request{{NamespacedName: r.Secret}}
	})
	return ctrl.NewControllerManagedBy(mgr).
		Named("servingcert").
		For(&corev1.Secret{}, builder.WithPredicates(predicate.NewPredicateFuncs(func(o client.Object) bool {
			return o.GetNamespace() == r.Secret.Namespace && o.GetName() == r.Secret.Name
		}))).
		Watches(&admissionregistrationv1.MutatingWebhookConfiguration{}, toSecret).
		Complete(r)
}

// Reconcile takes the due rotation steps, then brings the CA bundle in line
// with the Secret, then serves the Secret's certificate.
func (r *Rotator) Reconcile(ctx context.Context, _ reconcile.Request) (reconcile.Result, error) {
	secret := &corev1.Secret{}
	if err := r.Client.Get(ctx, r.Secret, secret); err != nil {
		return reconcile.Result{}, fmt.Errorf("read the Secret %s, which holds the webhook's certificates (the install creates it empty): %w", r.Secret, err)
	}
	state, problems := Decode(secret)
	for _, p := range problems {
		r.Log.Info("Part of the certificate Secret cannot be read; it is made anew", "secret", r.Secret, "problem", p.Error())
	}
	cfg := &admissionregistrationv1.MutatingWebhookConfiguration{}
	if err := r.Client.Get(ctx, types.NamespacedName{Name: r.Webhook}, cfg); err != nil {
		return reconcile.Result{}, fmt.Errorf("read the MutatingWebhookConfiguration %s: %w", r.Webhook, err)
	}
	bundle := Bundle(state)
	trusted := state.CA != nil && holds(cfg, bundle)

	now := r.now()
	steps, recheck := Decide(state, trusted, r.Policy, now)
	if len(steps) > 0 {
		next, err := Apply(state, steps, r.Policy, now)
		if err != nil {
			return reconcile.Result{}, err
		}
		if err := Encode(next, secret); err != nil {
			return reconcile.Result{}, err
		}
		if err := r.Client.Update(ctx, secret); err != nil {
			return conflictOr(fmt.Errorf("write the Secret %s: %w", r.Secret, err))
		}
		// The update's watch event brings the next round.
		r.Log.Info("Rotated the webhook's certificates", "steps", steps, "secret", r.Secret)
		return reconcile.Result{}, nil
	}
	if !trusted {
		for i := range cfg.Webhooks {
			cfg.Webhooks[i].ClientConfig.CABundle = bundle
		}
		if err := r.Client.Update(ctx, cfg); err != nil {
			return conflictOr(fmt.Errorf("write the CA bundle of the MutatingWebhookConfiguration %s: %w", r.Webhook, err))
		}
		r.Log.Info("Wrote the CA bundle", "webhookConfiguration", r.Webhook, "cas", len(state.Trust()))
	}
	if err := r.serve(state.Serving, trusted); err != nil {
		return reconcile.Result{}, err
	}
	return reconcile.Result{RequeueAfter: recheck}, nil
}

// conflictOr drops a write that lost a race: the winner's write is newer, and
// its watch event brings the next round. Other errors go to the controller's
// backoff.
func conflictOr(err error) (reconcile.Result, error) {
	if apierrors.IsConflict(err) {
		return reconcile.Result{}, nil
	}
	return reconcile.Result{}, err
}

// holds says whether every webhook of cfg carries bundle.
func holds(cfg *admissionregistrationv1.MutatingWebhookConfiguration, bundle []byte) bool {
	for _, w := range cfg.Webhooks {
		if !bytes.Equal(w.ClientConfig.CABundle, bundle) {
			return false
		}
	}
	return len(cfg.Webhooks) > 0
}

func (r *Rotator) serve(kp *certs.KeyPair, trusted bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.trusted = r.trusted || trusted
	if kp == nil || bytes.Equal(kp.CertPEM, r.servingPEM) {
		return nil
	}
	cert, err := tls.X509KeyPair(kp.CertPEM, kp.KeyPEM)
	if err != nil {
		return fmt.Errorf("load the serving certificate of the Secret %s: %w", r.Secret, err)
	}
	r.serving, r.servingPEM = &cert, kp.CertPEM
	r.Log.Info("Serving a new certificate", "notAfter", cert.Leaf.NotAfter)
	return nil
}

// GetCertificate serves the Secret's certificate, for tls.Config.
func (r *Rotator) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.serving == nil {
		return nil, errors.New("no serving certificate yet")
	}
	return r.serving, nil
}

// Ready is a readiness check: a certificate is served, and the API server's
// webhook configuration has trusted its CA.
func (r *Rotator) Ready(*http.Request) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.serving == nil:
		return errors.New("no serving certificate yet")
	case !r.trusted:
		return fmt.Errorf("the MutatingWebhookConfiguration %s does not hold the CA bundle yet", r.Webhook)
	}
	return nil
}

func (r *Rotator) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}
