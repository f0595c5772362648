package controller

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/opportunist/opportunist/api/v1alpha1"
	"github.com/opportunist/opportunist/internal/capacity"
	"github.com/opportunist/opportunist/internal/control"
)

func TestMarkYield(t *testing.T) {
	pod := func(name string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, Annotations: map[string]string{"keep": "me"}}}
	}
	refused := interceptor.Funcs{Patch: func(context.Context, client.WithWatch, client.Object, client.Patch, ...client.PatchOption) error {
		return errors.New("pods \"w-1\" is forbidden")
	}}
	tests := []struct {
		name      string
		funcs     *interceptor.Funcs
		yield     []string
		wantCost  map[string]string // pod -> annotation after
		wantEvent string
	}{
		{name: "exactly the yielded pods are marked", yield: []string{"ns/w-1"}, wantCost: map[string]string{"w-1": "-1000", "w-2": ""}},
		{name: "nothing to yield, nothing written", wantCost: map[string]string{"w-1": "", "w-2": ""}},
		{name: "a refused mark is an Event, not an error", funcs: &refused, yield: []string{"ns/w-1"},
			wantCost: map[string]string{"w-1": "", "w-2": ""}, wantEvent: "Warning YieldMarkFailed could not mark 1 of 1 pods"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			scheme := runtime.NewScheme()
			_ = clientgoscheme.AddToScheme(scheme)
			_ = v1alpha1.AddToScheme(scheme)
			b := fake.NewClientBuilder().WithScheme(scheme).WithObjects(pod("w-1"), pod("w-2"))
			if tc.funcs != nil {
				b = b.WithInterceptorFuncs(*tc.funcs)
			}
			c := b.Build()
			rec := events.NewFakeRecorder(10)
			r := &Reconciler{Client: c, Recorder: rec, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
			sr := &scalerRound{obj: &v1alpha1.OpportunisticScaler{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "worker"}}, key: "ns/worker"}
			r.markYield(context.Background(), sr, &control.Decision{Key: "ns/worker", Yield: tc.yield})
			for name, want := range tc.wantCost {
				var got corev1.Pod
				if err := c.Get(context.Background(), client.ObjectKey{Namespace: "ns", Name: name}, &got); err != nil {
					t.Fatal(err)
				}
				if v := got.Annotations[capacity.DeletionCostAnnotation]; v != want {
					t.Errorf("%s: deletion cost %q, want %q", name, v, want)
				}
				if got.Annotations["keep"] != "me" {
					t.Errorf("%s: other annotations lost: %v", name, got.Annotations)
				}
			}
			select {
			case e := <-rec.Events:
				if tc.wantEvent == "" || !strings.HasPrefix(e, tc.wantEvent) {
					t.Errorf("event %q, want %q", e, tc.wantEvent)
				}
			default:
				if tc.wantEvent != "" {
					t.Errorf("no event, want %q", tc.wantEvent)
				}
			}
		})
	}
}
