package credithttp

import (
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/creditkit/credits"
)

// Principal is what an [Authorizer] grants a request: the one account it
// may act on, as whom, and with which permissions.
type Principal struct {
	// Account is the account the request may read and spend from. A request
	// whose path names another account is refused with 403.
	Account string
	// Member is who spends on a team account: reserves and charges are
	// attributed to this member and checked against their limit. A request
	// naming another member in its body is refused unless Admin.
	Member string
	// Settle allows capturing and releasing the account's holds: saying
	// what a job used, and so what it costs, or that it failed and costs
	// nothing. Give it to the generation workers' credentials, never to an
	// end user's, who could capture their own hold for less, or release it
	// while the job runs and have the output for free. (To let users cancel
	// a job, give them an endpoint of yours that stops the job, then
	// releases its hold.)
	Settle bool
	// Admin allows everything on Account (and on it only): Settle, the
	// admin endpoints (grants, debits, voids, refunds, member limits) and
	// acting as any member.
	Admin bool
}

// Authorizer says who a request is and what it may touch. It is called
// for every request, after routing, so r.PathValue("account") is the
// account the request is for: return a Principal for it if the caller may
// act on it, or an error: one matching [ErrUnauthenticated] answers 401,
// any other (such as [ErrForbidden]) 403. The handler then refuses every
// request whose path names an account other than Principal.Account.
type Authorizer func(r *http.Request) (Principal, error)

// The errors an Authorizer returns to refuse a request.
var (
	// ErrUnauthenticated: the request says nobody (no or a bad credential).
	ErrUnauthenticated = errors.New("credithttp: unauthenticated")
	// ErrForbidden: the caller may not act on this account.
	ErrForbidden = errors.New("credithttp: forbidden")
)

// Config configures a [Handler]. Ledger and Authorize are required.
type Config struct {
	// Ledger is the ledger the API acts on. Its Config.QuoteKey must be
	// set: quotes go to the client sealed.
	Ledger *credits.Ledger
	// Authorize says, for every request, which account it may act on.
	Authorize Authorizer
	// MaxBodyBytes caps a request body; zero means 64 KiB. A larger body is
	// refused with 413 body_too_large.
	MaxBodyBytes int64
	// ProblemTypeBase prefixes a problem's code to make its "type" URI;
	// "" means "https://creditkit.dev/problems/".
	ProblemTypeBase string
	// EventsPoll is how often an events stream looks for new entries when
	// nothing wakes it sooner ([Handler.Notify]); zero means one second.
	EventsPoll time.Duration
	// EventsKeepAlive is how often an idle events stream sends a comment,
	// so proxies keep it open; zero means 15 seconds.
	EventsKeepAlive time.Duration
	// AuthChallenge is the WWW-Authenticate header of a 401 answer (an
	// Authorizer's ErrUnauthenticated), such as `Bearer realm="api"`; ""
	// sends none (a cookie session has no scheme to name).
	AuthChallenge string
	// MaxStreams caps the event streams open at once on this handler;
	// zero means 1000. One more is refused with 503 too_many_streams.
	MaxStreams int
	// Logger receives every 5xx answer with its cause; nil means
	// slog.Default(). The client sees the code and a fixed detail only.
	Logger *slog.Logger
}

// Handler is the HTTP API. Create it with [New]; it is safe for
// concurrent use.
type Handler struct {
	cfg     Config
	mux     *http.ServeMux
	streams chan struct{} // a slot per open event stream

	wakeMu sync.Mutex
	wake   map[string]map[chan struct{}]struct{} // the open streams of each account
}

// New returns the handler of cfg, or an error if Ledger or Authorize is
// missing.
func New(cfg Config) (*Handler, error) {
	if cfg.Ledger == nil {
		return nil, errors.New("credithttp: Config.Ledger is required")
	}
	if cfg.Authorize == nil {
		return nil, errors.New("credithttp: Config.Authorize is required")
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 64 << 10
	}
	if cfg.ProblemTypeBase == "" {
		cfg.ProblemTypeBase = "https://creditkit.dev/problems/"
	}
	if cfg.EventsPoll <= 0 {
		cfg.EventsPoll = time.Second
	}
	if cfg.EventsKeepAlive <= 0 {
		cfg.EventsKeepAlive = 15 * time.Second
	}
	if cfg.MaxStreams <= 0 {
		cfg.MaxStreams = 1000
	}
	h0 := make(chan struct{}, cfg.MaxStreams)
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	h := &Handler{cfg: cfg, mux: http.NewServeMux(), streams: h0, wake: map[string]map[chan struct{}]struct{}{}}
	h.routes()
	return h, nil
}

// Notify tells the account's open event streams on this handler to look
// for new entries now rather than at their next poll. The handler calls it
// itself after every write it makes; call it for writes made elsewhere
// (a worker's capture, a webhook's grant) to show them at once. With
// several servers, a [credits.Feed] consumer that calls Notify for each
// event's account makes every stream immediate. Notify never blocks; an
// account with no open stream costs a map lookup.
func (h *Handler) Notify(account string) {
	h.wakeMu.Lock()
	defer h.wakeMu.Unlock()
	for ch := range h.wake[account] {
		select {
		case ch <- struct{}{}:
		default: // already woken
		}
	}
}

// subscribe registers a stream of account for Notify; the returned func
// unregisters it.
func (h *Handler) subscribe(account string) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	h.wakeMu.Lock()
	if h.wake[account] == nil {
		h.wake[account] = map[chan struct{}]struct{}{}
	}
	h.wake[account][ch] = struct{}{}
	h.wakeMu.Unlock()
	return ch, func() {
		h.wakeMu.Lock()
		delete(h.wake[account], ch)
		if len(h.wake[account]) == 0 {
			delete(h.wake, account)
		}
		h.wakeMu.Unlock()
	}
}
