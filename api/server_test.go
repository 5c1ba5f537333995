package api

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/cairn-runtime/cairn/engine"
	"github.com/cairn-runtime/cairn/image"
	"github.com/cairn-runtime/cairn/runtime"
)

func TestNewer(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want bool
	}{{"1.41", "1.9", true}, {"1.9", "1.41", false}, {"1.41", "1.41", false}, {"2.0", "1.99", true}, {"1.24", "1.25", false}} {
		if got := newer(c.a, c.b); got != c.want {
			t.Errorf("newer(%s, %s) = %v", c.a, c.b, got)
		}
	}
}

func TestFilters(t *testing.T) {
	for _, raw := range []string{`{"label":["a=b","c"],"status":["exited"]}`, `{"label":{"a=b":true,"c":true,"off":false},"status":{"exited":true}}`} {
		r := httptest.NewRequest("GET", "/containers/json?filters="+url.QueryEscape(raw), nil)
		f, err := filters(r)
		if err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		if len(f["label"]) != 2 || !f.Contains("status") || len(f["status"]) != 1 {
			t.Errorf("%s: %v", raw, f)
		}
	}
	r := httptest.NewRequest("GET", "/containers/json?filters=%7Bbad", nil)
	if _, err := filters(r); statusOf(err) != http.StatusBadRequest {
		t.Errorf("bad filters: %v (status %d)", err, statusOf(err))
	}
}

func TestStatusOf(t *testing.T) {
	for _, c := range []struct {
		err  error
		want int
	}{
		{fmt.Errorf("%w: web", runtime.ErrNotFound), 404},
		{fmt.Errorf("%w: x", image.ErrNotFound), 404},
		{fmt.Errorf("%w: x", engine.ErrNoSuchObject), 404},
		{fmt.Errorf("%w: name in use", runtime.ErrConflict), 409},
		{fmt.Errorf("%w: bad", engine.ErrInvalid), 400},
		{fmt.Errorf("disk on fire"), 500},
	} {
		if got := statusOf(c.err); got != c.want {
			t.Errorf("statusOf(%v) = %d, want %d", c.err, got, c.want)
		}
	}
}
