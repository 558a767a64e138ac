// Server is a small AI image/video platform built on credits, to click
// through in a browser: a dashboard with the balance, the plan and its
// allowance, a generate form that shows the exact quote and asks to confirm
// before holding the credits, the job's status, the history, spending
// charts and a team's member limits, updated live from the ledger's events.
//
//	go run ./examples/server                            # SQLite file in the temp dir, http://127.0.0.1:8080
//	go run ./examples/server -db postgres://…           # or PostgreSQL
//	go run ./examples/server -addr 127.0.0.1:9000       # another address
//
// It needs no set-up: on start it creates the demo accounts if they are
// missing (alice on the pro plan, bob without a plan, and the team account
// "studio" of alice and bob, with member limits). Open the address in a
// browser; GET /login?user=bob signs in as bob (a cookie, for the demo: a
// real platform has real sign-in).
//
// What runs in the process:
//
//   - credithttp, the ledger's HTTP API, under /api/, with an Authorizer
//     that lets a user act on their own account and on the teams they are
//     a member of, and never settle a hold or call the admin endpoints;
//   - a fake generation worker: a feed consumer that picks up each new
//     hold, "generates" for 1–3 seconds, and captures what it produced (a
//     video a little shorter than asked, so less than the quote is charged)
//     or, when the generation fails (one time in five, and always when the
//     prompt contains the word "fail"), releases the hold with the reason;
//     a capture that fails for a moment is tried again, within the hold's
//     deadline;
//   - a "buy credits" flow: the page's Buy button posts to /app/buy with a
//     purchase ID of its own, and a simulated payment provider delivers its
//     webhook twice to /webhooks/payment, which grants the purchase under
//     the key payment:<id>: the second delivery changes nothing, so a
//     purchase clicked twice credits once (like credithttp's, the
//     platform's own POSTs need Content-Type: application/json, so that
//     another site's form cannot buy with the user's cookie);
//   - the dashboard, plain HTML, CSS and JavaScript embedded in the binary.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/creditkit/credits/sqlstore"
)

func main() {
	dsn := flag.String("db", "file:"+filepath.Join(os.TempDir(), "credits-server.db"),
		"database: a postgres:// URL, or a SQLite file: URI or path")
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	flag.Parse()
	log.SetFlags(0)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *dsn, *addr); err != nil {
		log.Fatalf("server: %v", err)
	}
}

// run serves the demo platform on addr until ctx is cancelled.
func run(ctx context.Context, dsn, addr string) error {
	store, err := sqlstore.Open(ctx, dsn, nil)
	if err != nil {
		return err
	}
	defer store.Close()
	opt := defaultOptions()
	host, _ := os.Hostname()
	opt.Worker.Holder = host + "/" + addr
	p, err := newPlatform(ctx, store, opt)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	log.Printf("demo platform on http://%s/ (ledger on %s: %s); Ctrl-C stops it", ln.Addr(), store.Dialect(), dsn)
	return serve(ctx, ln, p.Handler(), p.worker)
}

// serve runs the worker w and serves h on ln until ctx is cancelled, then
// shuts both down.
func serve(ctx context.Context, ln net.Listener, h http.Handler, w *worker) error {
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	// Requests get ctx as their base, so that open event streams end when
	// the server stops.
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	workerDone := make(chan error, 1)
	go func() { workerDone <- w.Run(ctx) }()
	serveDone := make(chan error, 1)
	go func() { serveDone <- srv.Serve(ln) }()

	var err error
	select {
	case <-ctx.Done():
	case err = <-serveDone:
	}
	stop()
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if serr := srv.Shutdown(shutdownCtx); serr != nil {
		_ = srv.Close()
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	if werr := <-workerDone; werr != nil && !errors.Is(werr, context.Canceled) && err == nil {
		err = fmt.Errorf("worker: %w", werr)
	}
	return err
}
