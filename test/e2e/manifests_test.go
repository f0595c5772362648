//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// manifestObject is one object of a manifest file and where it came from.
type manifestObject struct {
	file string
	obj  *unstructured.Unstructured
}

func (m manifestObject) key() string {
	return m.obj.GetKind() + "/" + m.obj.GetNamespace() + "/" + m.obj.GetName()
}

func (m manifestObject) String() string {
	name := m.obj.GetName()
	if ns := m.obj.GetNamespace(); ns != "" {
		name = ns + "/" + name
	}
	return fmt.Sprintf("%s %s (%s)", m.obj.GetKind(), name, m.file)
}

// readManifest decodes every object of a multi-document YAML file.
func readManifest(t *testing.T, rel string) []manifestObject {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot, rel))
	if err != nil {
		t.Fatalf("%s: %v (run make manifests)", rel, err)
	}
	return decodeManifest(t, rel, raw)
}

// readManifests reads every .yaml file under dirs (relative to the repo),
// recursively, in lexical order.
func readManifests(t *testing.T, dirs ...string) []manifestObject {
	t.Helper()
	var out []manifestObject
	for _, dir := range dirs {
		err := filepath.WalkDir(filepath.Join(repoRoot, dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || filepath.Ext(path) != ".yaml" {
				return err
			}
			rel, _ := filepath.Rel(repoRoot, path)
			out = append(out, readManifest(t, rel)...)
			return nil
		})
		if err != nil {
			t.Fatalf("reading manifests under %s: %v", dir, err)
		}
	}
	return out
}

// decodeManifest decodes every object of a multi-document YAML stream.
func decodeManifest(t *testing.T, name string, raw []byte) []manifestObject {
	t.Helper()
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(raw), 4096)
	var out []manifestObject
	for {
		var obj unstructured.Unstructured
		if err := dec.Decode(&obj.Object); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("%s: document %d: %v", name, len(out)+1, err)
		}
		if len(obj.Object) == 0 { // a document of comments only
			continue
		}
		out = append(out, manifestObject{file: name, obj: &obj})
	}
	if len(out) == 0 {
		t.Fatalf("%s holds no objects", name)
	}
	return out
}

// clusterScopedFirst orders Namespaces and PriorityClasses before what lives
// in them or names them, as kubectl apply of a directory needs them to be.
func clusterScopedFirst(objs []manifestObject) []manifestObject {
	var first, rest []manifestObject
	for _, o := range objs {
		if k := o.obj.GetKind(); k == "Namespace" || k == "PriorityClass" {
			first = append(first, o)
		} else {
			rest = append(rest, o)
		}
	}
	return append(first, rest...)
}

func find(objs []manifestObject, kind string) []manifestObject {
	var out []manifestObject
	for _, m := range objs {
		if m.obj.GetKind() == kind {
			out = append(out, m)
		}
	}
	return out
}

// applier server-side applies objects as `kubectl apply --server-side
// --force-conflicts` does, and deletes what it applied when the test ends.
type applier struct {
	dyn     dynamic.Interface
	mapper  *restmapper.DeferredDiscoveryRESTMapper
	manager string
	applied []manifestObject // in order, each key once
}

func newApplier(t *testing.T, fieldManager string) *applier {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg.QPS, cfg.Burst = 100, 200 // not the default 5 per second: tens of objects
	a := &applier{
		dyn:     dynamic.NewForConfigOrDie(cfg),
		mapper:  restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(client.Discovery())),
		manager: fieldManager,
	}
	t.Cleanup(func() { a.deleteAll(t) })
	return a
}

// resource maps an object to its dynamic client resource.
func (a *applier) resource(m manifestObject) (dynamic.ResourceInterface, error) {
	gvk := m.obj.GroupVersionKind()
	mapping, err := a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		a.mapper.Reset() // a CRD installed since the last discovery
		if mapping, err = a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version); err != nil {
			return nil, fmt.Errorf("the API server does not serve %s of %s: %w", gvk, m, err)
		}
	}
	if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
		return a.dyn.Resource(mapping.Resource).Namespace(m.obj.GetNamespace()), nil
	}
	return a.dyn.Resource(mapping.Resource), nil
}

// apply applies every object in order.
func (a *applier) apply(t *testing.T, objs []manifestObject) {
	t.Helper()
	ctx := context.Background()
	for _, m := range objs {
		res, err := a.resource(m)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := res.Apply(ctx, m.obj.GetName(), m.obj, metav1.ApplyOptions{FieldManager: a.manager, Force: true}); err != nil {
			t.Fatalf("server-side apply of %s: %v", m, err)
		}
		a.forget(m)
		a.applied = append(a.applied, m)
	}
}

func (a *applier) forget(m manifestObject) {
	a.applied = slices.DeleteFunc(a.applied, func(o manifestObject) bool { return o.key() == m.key() })
}

// remove deletes one applied object now (and not again at the end).
func (a *applier) remove(t *testing.T, m manifestObject) {
	t.Helper()
	res, err := a.resource(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := res.Delete(context.Background(), m.obj.GetName(), metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		t.Fatalf("deleting %s: %v", m, err)
	}
	a.forget(m)
}

// deleteAll deletes what was applied, except the CRD the other tests share:
// first everything else in reverse order (APIServices before namespaces: one
// nobody answers stalls namespace deletion), then the namespaces, waited for
// so no pod of theirs holds room in the next test, then the nodes (kwok
// finishes deleting pods only on nodes that still exist).
func (a *applier) deleteAll(t *testing.T) {
	var namespaces, nodes []manifestObject
	for i := len(a.applied) - 1; i >= 0; i-- {
		switch m := a.applied[i]; m.obj.GetKind() {
		case "CustomResourceDefinition":
		case "Namespace":
			namespaces = append(namespaces, m)
		case "Node":
			nodes = append(nodes, m)
		default:
			a.deleteAndWait(t, []manifestObject{m}, 0)
		}
	}
	a.deleteAndWait(t, namespaces, 60*time.Second)
	a.deleteAndWait(t, nodes, 60*time.Second)
}

// deleteAndWait deletes objs and, when wait > 0, waits until they are gone.
func (a *applier) deleteAndWait(t *testing.T, objs []manifestObject, wait time.Duration) {
	ctx := context.Background()
	for _, m := range objs {
		res, err := a.resource(m)
		if err == nil {
			err = res.Delete(ctx, m.obj.GetName(), metav1.DeleteOptions{})
		}
		if err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("cleanup: deleting %s: %v", m, err)
		}
	}
	if wait == 0 {
		return
	}
	for _, m := range objs {
		res, err := a.resource(m)
		if err != nil {
			continue
		}
		waitFor(t, wait, fmt.Sprintf("%s to be deleted", m), func(ctx context.Context) (bool, error) {
			_, err := res.Get(ctx, m.obj.GetName(), metav1.GetOptions{})
			return apierrors.IsNotFound(err), nil
		})
	}
}

// serviceAccountKubeconfig mints a token for a ServiceAccount (TokenRequest) and
// writes a kubeconfig that uses it and nothing else, outside the artifacts
// (it is a credential); it returns the file and a clientset acting as it.
func serviceAccountKubeconfig(t *testing.T, namespace, account string) (string, kubernetes.Interface) {
	t.Helper()
	ctx := context.Background()
	expiry := int64(3600)
	tok, err := client.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, account,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &expiry}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("minting a token for ServiceAccount %s/%s: %v", namespace, account, err)
	}
	admin, err := clientcmd.LoadFromFile(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cluster := admin.Clusters[admin.Contexts[admin.CurrentContext].Cluster]
	if cluster == nil {
		t.Fatalf("%s: no cluster in the current context", kubeconfig)
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["local"] = cluster
	cfg.AuthInfos[account] = &clientcmdapi.AuthInfo{Token: tok.Status.Token}
	cfg.Contexts[account] = &clientcmdapi.Context{Cluster: "local", AuthInfo: account, Namespace: namespace}
	cfg.CurrentContext = account
	path := filepath.Join(t.TempDir(), namespace+"-"+account+".kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	rc, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatal(err)
	}
	return path, kubernetes.NewForConfigOrDie(rc)
}
