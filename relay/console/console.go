package console

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// SessionTTL is how long a login lasts.
const SessionTTL = 12 * time.Hour

// maxSessions bounds the sessions kept in memory; past it the oldest go.
const maxSessions = 1000

const (
	sessionCookie = "hooxrelay_session"
	csrfField     = "csrf"
)

// Console is the /ui/ handler.
type Console struct {
	backend Backend
	log     *slog.Logger
	pages   map[string]*template.Template
	mux     *http.ServeMux
	rates   rateTracker
	origin  *http.CrossOriginProtection

	mu       sync.Mutex
	sessions map[string]*session
}

// session is one browser's: its CSRF token and, when a token is set, a
// hash of the admin_token it logged in with, so that a changed token ends
// it.
type session struct {
	csrf      string
	tokenHash [32]byte
	expires   time.Time
}

// New returns the console over b; log receives its errors (nil discards).
func New(b Backend, log *slog.Logger) *Console {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Console{backend: b, log: log, pages: parsePages(), sessions: map[string]*session{},
		origin: http.NewCrossOriginProtection()}
	static, _ := fs.Sub(staticFS, "static")
	m := http.NewServeMux()
	files := http.StripPrefix("/ui/static/", http.FileServerFS(static))
	m.HandleFunc("GET /ui/static/{file}", func(w http.ResponseWriter, r *http.Request) { files.ServeHTTP(w, r) })
	m.HandleFunc("GET /ui/login", c.loginPage)
	m.HandleFunc("POST /ui/login", c.login)
	m.HandleFunc("POST /ui/logout", c.authed(c.logout))
	m.HandleFunc("GET /ui/{$}", c.authed(c.overview))
	m.HandleFunc("GET /ui/live", c.authed(c.live))
	m.HandleFunc("GET /ui/events", c.authed(c.events))
	m.HandleFunc("GET /ui/events/{id}", c.authed(c.event))
	m.HandleFunc("GET /ui/dead", c.authed(c.dead))
	m.HandleFunc("GET /ui/targets", c.authed(c.targets))
	m.HandleFunc("GET /ui/rejected", c.authed(c.rejected))
	m.HandleFunc("GET /ui/replays", c.authed(c.replays))
	m.HandleFunc("GET /ui/replays/live", c.authed(c.replaysLive))
	m.HandleFunc("POST /ui/replays/plan", c.authed(c.planReplay))
	m.HandleFunc("POST /ui/replays", c.authed(c.startReplay))
	m.HandleFunc("POST /ui/replays/{id}/cancel", c.authed(c.cancelReplay))
	m.HandleFunc("POST /ui/deliveries/{id}/retry", c.authed(c.retry))
	m.HandleFunc("POST /ui/targets/{name}/retry-dead", c.authed(c.retryDead))
	m.HandleFunc("POST /ui/targets/{name}/pause", c.authed(c.pause(true)))
	m.HandleFunc("POST /ui/targets/{name}/resume", c.authed(c.pause(false)))
	m.HandleFunc("/ui/", func(w http.ResponseWriter, r *http.Request) {
		c.fail(w, r, http.StatusNotFound, "No such page. The overview is at /ui/.")
	})
	c.mux = m
	return c
}

// ServeHTTP serves /ui/ with the console's security headers, refusing
// cross-origin state changes before anything else.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "+
		"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
	if err := c.origin.Check(r); err != nil {
		c.fail(w, r, http.StatusForbidden, "Refused: this request came from another site.")
		return
	}
	c.mux.ServeHTTP(w, r)
}

// reqState is what a page handler knows of the request's session.
type reqState struct {
	csrf   string
	authOn bool // a token is set, so a logout button shows
}

type handler func(w http.ResponseWriter, r *http.Request, st reqState)

// authed runs next for a browser with a live session: logged in when a
// token is set, any when not (one is started). A POST must carry the
// session's CSRF token.
func (c *Console) authed(next handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		token := c.backend.AdminToken()
		s := c.session(r, token)
		if s == nil {
			if token != "" {
				if r.Method != http.MethodGet {
					c.fail(w, r, http.StatusUnauthorized, "Your session ended. Log in again at /ui/login.")
					return
				}
				if r.Header.Get("HX-Request") != "" {
					w.Header().Set("HX-Redirect", "/ui/login")
					w.WriteHeader(http.StatusUnauthorized)
					return
				}
				http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
				return
			}
			s = c.startSession(w, r, token)
		}
		if r.Method == http.MethodPost {
			got := r.PostFormValue(csrfField)
			if got == "" {
				got = r.Header.Get("X-CSRF-Token")
			}
			if subtle.ConstantTimeCompare([]byte(got), []byte(s.csrf)) != 1 {
				c.fail(w, r, http.StatusForbidden, "Refused: the form's CSRF token is missing or stale. Reload the page and try again.")
				return
			}
		}
		next(w, r, reqState{csrf: s.csrf, authOn: token != ""})
	}
}

// session returns the request's live session, or nil.
func (c *Console) session(r *http.Request, token string) *session {
	ck, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.sessions[ck.Value]
	if s == nil {
		return nil
	}
	if time.Now().After(s.expires) || s.tokenHash != sha256.Sum256([]byte(token)) {
		delete(c.sessions, ck.Value)
		return nil
	}
	return s
}

// startSession keeps a new session and sets its cookie.
func (c *Console) startSession(w http.ResponseWriter, r *http.Request, token string) *session {
	id, csrf := randomString(), randomString()
	s := &session{csrf: csrf, tokenHash: sha256.Sum256([]byte(token)), expires: time.Now().Add(SessionTTL)}
	c.mu.Lock()
	now := time.Now()
	for k, old := range c.sessions {
		if now.After(old.expires) {
			delete(c.sessions, k)
		}
	}
	for k := range c.sessions { // still full: drop any
		if len(c.sessions) < maxSessions {
			break
		}
		delete(c.sessions, k)
	}
	c.sessions[id] = s
	c.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: id, Path: "/ui/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: overTLS(r), Expires: s.expires, MaxAge: int(SessionTTL / time.Second)})
	return s
}

// overTLS reports whether the browser reached the console over TLS: here,
// or through a proxy that ended TLS and says so. A client that lies only
// makes its own cookie stricter.
func overTLS(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

func randomString() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	if c.backend.AdminToken() == "" {
		http.Redirect(w, r, "/ui/", http.StatusSeeOther)
		return
	}
	c.render(w, http.StatusOK, "login", page{Title: "Log in"})
}

// login checks the posted token in constant time and starts a session.
// Cross-origin posts were refused in ServeHTTP.
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	want := c.backend.AdminToken()
	if want == "" {
		http.Redirect(w, r, "/ui/", http.StatusSeeOther)
		return
	}
	a, b := sha256.Sum256([]byte(r.PostFormValue("token"))), sha256.Sum256([]byte(want))
	if subtle.ConstantTimeCompare(a[:], b[:]) != 1 {
		c.log.Warn("console login refused: wrong admin token", "remote", r.RemoteAddr)
		c.render(w, http.StatusUnauthorized, "login", page{Title: "Log in", Error: "That is not the admin token (server.admin_token). Try again."})
		return
	}
	if ck, err := r.Cookie(sessionCookie); err == nil {
		c.mu.Lock()
		delete(c.sessions, ck.Value)
		c.mu.Unlock()
	}
	c.startSession(w, r, want)
	http.Redirect(w, r, "/ui/", http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request, _ reqState) {
	if ck, err := r.Cookie(sessionCookie); err == nil {
		c.mu.Lock()
		delete(c.sessions, ck.Value)
		c.mu.Unlock()
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/ui/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
}
