package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"
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
		return nil, nil, fmt.Errorf("cannot reach the Kubernetes API server at %s: %s", cfg.Host, reason(err))
	}
	return cs, cfg, nil
}

// reason shortens transport errors to their cause ("connection refused").
func reason(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		var op *net.OpError
		if errors.As(ue.Err, &op) && op.Err != nil {
			return oneLine(op.Err)
		}
		return oneLine(ue.Err)
	}
	return oneLine(err)
}

func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}
