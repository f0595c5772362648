package controller

import (
	"errors"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/opportunist/opportunist/internal/capacity"
	"github.com/opportunist/opportunist/internal/scalerspec"
)

func TestTemplateShape(t *testing.T) {
	withTemplate := func(template any) *unstructured.Unstructured {
		obj := map[string]any{"kind": "Deployment", "metadata": map[string]any{"name": "w"}, "spec": map[string]any{}}
		if template != nil {
			obj["spec"].(map[string]any)["template"] = template
		}
		return &unstructured.Unstructured{Object: obj}
	}
	container := func(requests map[string]any) map[string]any {
		return map[string]any{"spec": map[string]any{"containers": []any{map[string]any{"name": "c", "resources": map[string]any{"requests": requests}}}}}
	}
	cronJob := func(template any) *unstructured.Unstructured {
		job := map[string]any{}
		if template != nil {
			job["template"] = template
		}
		return &unstructured.Unstructured{Object: map[string]any{"kind": "CronJob", "metadata": map[string]any{"name": "nightly"},
			"spec": map[string]any{"schedule": "@daily", "jobTemplate": map[string]any{"spec": job}}}}
	}
	tests := []struct {
		name    string
		obj     *unstructured.Unstructured
		wantErr error
		wantCPU int64
	}{
		{name: "requests", obj: withTemplate(container(map[string]any{"cpu": "1500m"})), wantCPU: 1500},
		{name: "no template", obj: withTemplate(nil), wantErr: scalerspec.ErrNoTemplate},
		{name: "template of the wrong type", obj: withTemplate("not a template"), wantErr: scalerspec.ErrNoTemplate},
		{name: "no requests", obj: withTemplate(container(map[string]any{})), wantErr: scalerspec.ErrNoRequests},
		{name: "cronjob", obj: cronJob(container(map[string]any{"cpu": "4"})), wantCPU: 4000},
		{name: "cronjob without template", obj: cronJob(nil), wantErr: scalerspec.ErrNoTemplate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tpl, err := podTemplate(tt.obj)
			if err == nil {
				var shape capacity.Shape
				if shape, err = templateShape(tt.obj, tpl); err == nil && shape.Requests["cpu"] != tt.wantCPU {
					t.Fatalf("cpu = %d, want %d", shape.Requests["cpu"], tt.wantCPU)
				}
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error = %v, want %v", err, tt.wantErr)
			}
		})
	}
}
