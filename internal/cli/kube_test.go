//go:build !nocluster

package cli

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// twoContexts writes a kubeconfig with contexts a and b on different
// servers; b's CA is a file, to check it gets embedded.
func twoContexts(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(ca, []byte("not really a CA"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["a"] = &clientcmdapi.Cluster{Server: "https://a.example:6443"}
	cfg.Clusters["b"] = &clientcmdapi.Cluster{Server: "https://b.example:6443", CertificateAuthority: ca}
	cfg.AuthInfos["a"] = &clientcmdapi.AuthInfo{Token: "token-a"}
	cfg.AuthInfos["b"] = &clientcmdapi.AuthInfo{Token: "token-b"}
	cfg.Contexts["a"] = &clientcmdapi.Context{Cluster: "a", AuthInfo: "a"}
	cfg.Contexts["b"] = &clientcmdapi.Context{Cluster: "b", AuthInfo: "b"}
	cfg.CurrentContext = "a"
	path := filepath.Join(dir, "config")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestDelegationKubeconfigFollowsContext(t *testing.T) {
	path := twoContexts(t)
	o := kubeOptions{Kubeconfig: path}
	got, cleanup, err := o.delegationKubeconfig()
	defer cleanup()
	if err != nil || got != path {
		t.Fatalf("without --context: %q, %v; want the file itself, %q", got, err, path)
	}

	o.Context = "b"
	got, cleanup, err = o.delegationKubeconfig()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.LoadFromFile(got)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.CurrentContext != "b" || len(cfg.Clusters) != 1 || cfg.Clusters["b"] == nil || cfg.AuthInfos["b"].Token != "token-b" {
		t.Fatalf("with --context b the written kubeconfig is %+v", cfg)
	}
	if string(cfg.Clusters["b"].CertificateAuthorityData) != "not really a CA" {
		t.Errorf("the CA file was not embedded: %+v", cfg.Clusters["b"])
	}
	info, err := os.Stat(got)
	if err != nil || info.Mode().Perm()&0o077 != 0 {
		t.Errorf("the written kubeconfig holds credentials and must be private: %v, %v", info.Mode(), err)
	}
	cleanup()
	if _, err := os.Stat(got); !os.IsNotExist(err) {
		t.Errorf("cleanup left %s: %v", got, err)
	}

	o.Context = "missing"
	if _, cleanup, err := o.delegationKubeconfig(); err == nil {
		cleanup()
		t.Error("an unknown --context was accepted")
	}
}

// TestProtobufClientAsksForProtobuf: the informers' client asks for
// protobuf and takes JSON when that is what comes back.
func TestProtobufClientAsksForProtobuf(t *testing.T) {
	var accept string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		accept = r.Header.Get("Accept")
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"7"},"items":[{"metadata":{"name":"p","namespace":"ns"}}]}`)
	}))
	defer srv.Close()
	cs, err := protobufClient(&rest.Config{Host: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	list, err := cs.CoreV1().Pods("").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(accept, "application/vnd.kubernetes.protobuf") || !strings.Contains(accept, "application/json") {
		t.Errorf("Accept: %q, want protobuf first, then JSON", accept)
	}
	if len(list.Items) != 1 || list.Items[0].Name != "p" {
		t.Errorf("JSON answer not decoded: %+v", list)
	}
}

// TestProtobufClientWatchOutlivesRequestTimeout: a watch through the
// informers' client is not cut at --request-timeout (it was, every 10 s, at
// 5,000 nodes): an event sent after three times the timeout still arrives.
func TestProtobufClientWatchOutlivesRequestTimeout(t *testing.T) {
	const timeout = 100 * time.Millisecond
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("watch") != "true" {
			http.Error(w, "want a watch", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		time.Sleep(3 * timeout)
		fmt.Fprint(w, `{"type":"ADDED","object":{"kind":"Pod","apiVersion":"v1","metadata":{"name":"late","namespace":"ns","resourceVersion":"8"}}}`+"\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer srv.Close()
	cs, err := protobufClient(&rest.Config{Host: srv.URL, Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	w, err := cs.CoreV1().Pods("").Watch(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	select {
	case ev, ok := <-w.ResultChan():
		if !ok {
			t.Fatalf("the watch ended before the event sent after %s (the client's request timeout is %s)", 3*timeout, timeout)
		}
		if p, isPod := ev.Object.(*corev1.Pod); !isPod || p.Name != "late" {
			t.Errorf("event %s %#v, want the pod late ADDED", ev.Type, ev.Object)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10 s")
	}
}
