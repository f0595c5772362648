//go:build !nocluster

package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/pflag"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// kubeOptions select the cluster: a kubeconfig (flag, KUBECONFIG, ~/.kube/config)
// or, when none is found, the in-cluster service account.
type kubeOptions struct {
	Kubeconfig string
	Context    string
	// Timeout bounds each request to the API server.
	Timeout time.Duration
}

func defaultKubeOptions() kubeOptions { return kubeOptions{Timeout: 10 * time.Second} }

func (o *kubeOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig, "path to a kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or the in-cluster service account)")
	fs.StringVar(&o.Context, "context", o.Context, "kubeconfig context to use (default: the current context)")
	fs.DurationVar(&o.Timeout, "request-timeout", o.Timeout, "timeout of each request to the API server")
}

func (o *kubeOptions) Validate() []error {
	var errs []error
	if o.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("--request-timeout must be positive, got %s", o.Timeout))
	}
	if o.Kubeconfig != "" {
		if _, err := os.Stat(o.Kubeconfig); err != nil {
			errs = append(errs, fmt.Errorf("--kubeconfig %s: %w", o.Kubeconfig, unwrapPathError(err)))
		}
	}
	return errs
}

func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// kubeconfigPath is the kubeconfig file in use: the flag, else the first of
// $KUBECONFIG, else ~/.kube/config when it exists, else "" (in-cluster).
func (o *kubeOptions) kubeconfigPath() string {
	if o.Kubeconfig != "" {
		return o.Kubeconfig
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	for _, p := range rules.Precedence {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// delegationKubeconfig is a kubeconfig file for components that take only a
// path (the metrics API's delegated authentication): the file in use when it
// alone says everything, else the effective configuration — the --context
// chosen, several $KUBECONFIG files merged — written flattened into a new
// private temporary directory that cleanup removes. "" means in-cluster.
func (o *kubeOptions) delegationKubeconfig() (path string, cleanup func(), err error) {
	cleanup = func() {}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = o.Kubeconfig
	if o.Context == "" && (o.Kubeconfig != "" || len(rules.Precedence) <= 1) {
		return o.kubeconfigPath(), cleanup, nil
	}
	raw, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, nil).RawConfig()
	if err != nil {
		return "", cleanup, fmt.Errorf("loading kubeconfig: %s", oneLine(err))
	}
	if len(raw.Contexts) == 0 {
		return "", cleanup, nil
	}
	if o.Context != "" {
		raw.CurrentContext = o.Context
	}
	if err := clientcmdapi.MinifyConfig(&raw); err != nil {
		return "", cleanup, fmt.Errorf("kubeconfig: %s", oneLine(err))
	}
	if err := clientcmdapi.FlattenConfig(&raw); err != nil {
		return "", cleanup, fmt.Errorf("kubeconfig: %s", oneLine(err))
	}
	dir, err := os.MkdirTemp("", "opportunist-kubeconfig-")
	if err != nil {
		return "", cleanup, fmt.Errorf("writing the metrics API's kubeconfig: %s", oneLine(err))
	}
	cleanup = func() { os.RemoveAll(dir) }
	path = filepath.Join(dir, "kubeconfig")
	if err := clientcmd.WriteToFile(raw, path); err != nil {
		cleanup()
		return "", func() {}, fmt.Errorf("writing the metrics API's kubeconfig: %s", oneLine(err))
	}
	return path, cleanup, nil
}

// restConfig loads the client configuration, with errors a user can act on.
func (o *kubeOptions) restConfig() (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = o.Kubeconfig
	overrides := &clientcmd.ConfigOverrides{CurrentContext: o.Context}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides).ClientConfig()
	if err != nil {
		if clientcmd.IsEmptyConfig(err) {
			if o.Kubeconfig != "" {
				return nil, fmt.Errorf("--kubeconfig %s holds no cluster: pass a kubeconfig with a cluster, user and context in it (kubectl config view --minify --flatten writes one)", o.Kubeconfig)
			}
			if env := os.Getenv(clientcmd.RecommendedConfigPathEnvVar); env != "" {
				return nil, fmt.Errorf("KUBECONFIG=%s holds no cluster: point it at a kubeconfig with a cluster, user and context in it, or pass --kubeconfig", env)
			}
			return nil, errors.New("no Kubernetes configuration found: pass --kubeconfig, set KUBECONFIG, or run inside a cluster")
		}
		return nil, fmt.Errorf("loading kubeconfig: %s", oneLine(err))
	}
	cfg.Timeout = o.Timeout
	cfg.UserAgent = "opportunist"
	// Informers over a large cluster list a lot at start; the defaults (5 QPS) are too slow.
	cfg.QPS, cfg.Burst = 50, 100
	return cfg, nil
}

// client returns a clientset after checking that the API server answers, so
// an unreachable or refusing server is one clear error up front.
func (o *kubeOptions) client(ctx context.Context) (kubernetes.Interface, *rest.Config, error) {
	cfg, err := o.restConfig()
	if err != nil {
		return nil, nil, err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("building a client for %s: %s", cfg.Host, oneLine(err))
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	if _, err := cs.Discovery().RESTClient().Get().AbsPath("/readyz").Do(ctx).Raw(); err != nil {
		return nil, nil, unreachable(cfg.Host, o.Timeout, err)
	}
	return cs, cfg, nil
}

// protobufClient is a clientset over cfg that asks for protobuf, the API
// server's compact encoding of built-in types, with JSON as the fallback.
// The pod and node informers decode every pod at start and on each event
// after: protobuf decodes a pod ~6 times faster than JSON
// (BenchmarkDecodePod in internal/cluster), which shortens a restart's full
// list at 150,000 pods by tens of CPU-seconds. Only for built-in types:
// custom resources have no protobuf form. It has no --request-timeout:
// that bounds a whole request, so it ended the informers' pod watch every
// 10 s (the audit log of a 5,000-node run: a new pod watch every 10 s, each
// resumed from where the last one was cut) and would end a list of 150,000
// pods after 10 s. The reflector bounds its own watches (5-10 min) and the
// API server its lists.
func protobufClient(cfg *rest.Config) (kubernetes.Interface, error) {
	pcfg := rest.CopyConfig(cfg)
	pcfg.Timeout = 0
	pcfg.ContentType = runtime.ContentTypeProtobuf
	pcfg.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
	cs, err := kubernetes.NewForConfig(pcfg)
	if err != nil {
		return nil, fmt.Errorf("building a client for %s: %s", cfg.Host, oneLine(err))
	}
	return cs, nil
}

// unreachable says why the API server at host did not answer its readiness
// check, and what to do about it.
func unreachable(host string, timeout time.Duration, err error) error {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("the Kubernetes API server at %s did not answer within %s: check that it is running and reachable from here, or raise --request-timeout", host, timeout)
	case apierrors.IsNotFound(err):
		// Something answered HTTP, but has no /readyz: not an API server.
		return fmt.Errorf("the server at %s answered but is not a Kubernetes API server (no /readyz): check the server address in your kubeconfig", host)
	case apierrors.IsUnauthorized(err) || apierrors.IsForbidden(err):
		// It answered, so "cannot reach" would mislead: the credentials are the problem.
		status := "401 Unauthorized"
		if apierrors.IsForbidden(err) {
			status = "403 Forbidden"
		}
		return fmt.Errorf("the Kubernetes API server at %s refused the kubeconfig's credentials (%s): check the user of your kubeconfig's context (kubectl auth whoami)", host, status)
	}
	return fmt.Errorf("cannot reach the Kubernetes API server at %s: %s: check that it is running and that your kubeconfig (or --context) names the right server", host, reason(err))
}
