//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
)

// syncBuffer is a bytes.Buffer a running command writes while the test reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestTry runs `make try`'s script as a new user would: hack/try.sh fills
// the write-up's cluster with the worker (184 - 38 paid - 30 headroom = 116)
// and prints a dashboard URL that answers; `hack/try.sh burst` makes the
// worker yield to 56 (17 paid app pods of 4 cores) and refill to 116; a
// SIGTERM (what its Ctrl-C trap does) stops opportunist and says how to stop
// the control plane.
func TestTry(t *testing.T) {
	requireEmptyCluster(t)
	dir := testDir(t)
	listen := freeAddress(t)
	t.Cleanup(func() { cleanUpTry(t, dir) })
	dumpOnFailure(t, nil)
	workers := traceReplicas(t, "demo", "worker")
	env := append(os.Environ(), "OPPORTUNIST_CLUSTER_DIR="+clusterDir, "LISTEN="+listen, "TRY_DIR="+dir, "BURST_HOLD=2")

	up := exec.Command("bash", "hack/try.sh")
	up.Dir, up.Env = repoRoot, env
	var upOut syncBuffer
	up.Stdout, up.Stderr = &upOut, &upOut
	start := time.Now()
	if err := up.Start(); err != nil {
		t.Fatal(err)
	}
	upDone := make(chan error, 1)
	go func() { upDone <- up.Wait() }()
	t.Cleanup(func() {
		if up.ProcessState == nil {
			_ = up.Process.Signal(syscall.SIGTERM)
			<-upDone
		}
	})
	url := "http://" + listen + "/dashboard/"
	err := wait.PollUntilContextTimeout(context.Background(), 200*time.Millisecond, 90*time.Second, true, func(context.Context) (bool, error) {
		select {
		case err := <-upDone:
			upDone <- err
			return false, err
		default:
		}
		return strings.Contains(upOut.String(), "dashboard: "+url), nil
	})
	if err != nil {
		t.Fatalf("hack/try.sh printed no dashboard URL %s after %s (%v); output:\n%s", url, time.Since(start).Round(time.Millisecond), err, lastLines(upOut.String(), 40))
	}
	t.Logf("hack/try.sh printed the dashboard URL after %s", time.Since(start).Round(time.Millisecond))
	if !strings.Contains(upOut.String(), "it filled the rest, 116 workers") {
		t.Errorf("hack/try.sh does not say the worker filled to 116; output:\n%s", lastLines(upOut.String(), 40))
	}
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), "<title>opportunist") {
		t.Errorf("GET %s: %s, want 200 and the dashboard page; body:\n%s", url, resp.Status, lastLines(string(page), 10))
	}

	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	burst := exec.CommandContext(ctx, "bash", "hack/try.sh", "burst")
	burst.Dir, burst.Env = repoRoot, env
	var burstOut bytes.Buffer
	burst.Stdout, burst.Stderr = &burstOut, &burstOut
	burstStart := time.Now()
	err = burst.Run()
	_ = os.WriteFile(filepath.Join(dir, "burst.log"), burstOut.Bytes(), 0o644)
	if err != nil {
		t.Fatalf("hack/try.sh burst failed after %s (%v); opportunist's log in %s; output:\n%s",
			time.Since(burstStart).Round(time.Millisecond), err, filepath.Join(dir, "opportunist.log"), lastLines(burstOut.String(), 40))
	}
	t.Logf("hack/try.sh burst took %s:\n%s", time.Since(burstStart).Round(time.Millisecond), burstOut.String())
	for _, want := range []string{"yielded: the worker is at 56", "refilled: the worker is at 116"} {
		if !strings.Contains(burstOut.String(), want) {
			t.Errorf("hack/try.sh burst does not say %q", want)
		}
	}
	if _, w := workers.directionChanges(); !inOrder(w, 116, 56, 116) {
		t.Errorf("worker replicas %v: want 116, then 56 (the burst), then 116 again", w)
	}

	if err := up.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-upDone:
	case <-time.After(15 * time.Second):
		t.Fatal("hack/try.sh still running 15s after SIGTERM")
	}
	if !strings.Contains(upOut.String(), "opportunist stopped") || !strings.Contains(upOut.String(), "hack/try.sh down") {
		t.Errorf("hack/try.sh's last words do not say opportunist stopped and how to stop the control plane:\n%s", lastLines(upOut.String(), 5))
	}
	if resp, err := http.Get(url); err == nil {
		resp.Body.Close()
		t.Errorf("opportunist still answers on %s after hack/try.sh stopped", listen)
	}
}

// cleanUpTry deletes what hack/try.sh applied: the paid namespace first
// (kwok finishes deleting pods only on nodes that exist), then the demo's.
func cleanUpTry(t *testing.T, dir string) {
	ctx := context.Background()
	if err := client.CoreV1().Namespaces().Delete(ctx, "paid", metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		t.Errorf("deleting namespace paid: %v", err)
	}
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := client.CoreV1().Namespaces().Get(ctx, "paid", metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	if err != nil {
		t.Error("namespace paid still present 60s after deletion")
	}
	cleanUpWalkthrough(t, dir)
}
