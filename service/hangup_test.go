package service_test

import (
	"context"
	"strings"
	"testing"

	"github.com/bulwark-go/bulwark/service"
	"github.com/bulwark-go/bulwark/service/user"
	"github.com/bulwark-go/bulwark/storage/memory"
)

// hangingUsers blocks ByEmail until the request's context ends, as a
// database query does when the client goes away mid-query.
type hangingUsers struct {
	user.Store
	entered chan struct{}
}

func (h hangingUsers) ByEmail(ctx context.Context, email string) (user.User, error) {
	if email == "slow@example.com" {
		h.entered <- struct{}{}
		<-ctx.Done()
		return user.User{}, ctx.Err()
	}
	return h.Store.ByEmail(ctx, email)
}

// A client that hangs up mid-request is recorded as 499 in the access log
// and the metrics: no ERROR line, no 5xx series.
func TestClientHangUpIs499(t *testing.T) {
	tel := newCountTel()
	users := hangingUsers{Store: memory.NewUsers(), entered: make(chan struct{}, 1)}
	e := newEnv(t, users, withTelemetry(tel))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int)
	go func() {
		// e.do validates against the description; 499 is nobody's answer
		// (the client is gone), so serve without it.
		r := req{method: "POST", path: "/auth/login", body: `{"username":"slow@example.com","password":"whatever123"}`, ctx: ctx}
		done <- e.serveRaw(r).Code
	}()
	<-users.entered
	cancel()
	if code := <-done; code != service.StatusClientClosedRequest {
		t.Fatalf("status %d, want 499", code)
	}
	if n := tel.get("http_requests_total", "method=POST,route=/auth/login,status_code=499"); n != 1 {
		t.Fatalf("http_requests_total{status_code=499} = %v, want 1", n)
	}
	logs := e.logs.String()
	if strings.Contains(logs, `"level":"ERROR"`) {
		t.Fatalf("a client hang-up logged at ERROR:\n%s", logs)
	}
	if !strings.Contains(logs, `"msg":"http.request"`) || !strings.Contains(logs, `"status":499`) {
		t.Fatalf("no access-log line with status 499:\n%s", logs)
	}
	for name := range tel.n {
		if strings.Contains(name, "status_code=5") {
			t.Fatalf("a 5xx series: %s", name)
		}
	}
}
