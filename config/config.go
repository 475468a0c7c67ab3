// Package config reads, checks and describes a hooxrelay configuration file.
//
// Loading happens in three steps, each with its own reason to exist:
//
//  1. Default builds a Config in which every key of the file format already
//     holds its documented default, so that a key left out of the file means
//     "the default" while a key written as 0 means 0.
//  2. Parse expands ${NAME} references and decodes the YAML strictly over
//     those defaults: an unknown key, a value of the wrong type or an unset
//     environment variable is reported with its file, line and key path,
//     because a typo that silently falls back to a default is the kind of
//     mistake an operator only finds during an incident.
//  3. Validate checks the meaning of the values and reports every problem at
//     once, so that fixing a file takes one round trip, not one per mistake.
//     Route conditions are the exception: their meaning is the rules
//     package's to judge, and Validate only decodes them.
//
// Load and Check do all three, and report the problems of steps 2 and 3 in
// one go, with those of the checks they are given (such as compiling the
// routes), each at the line of its key. Every error the package returns for
// a problem in the file is a *FieldError, possibly several joined with
// errors.Join; FieldErrors takes them apart again.
//
// The package imports nothing else of hooxrelay, and only the command reads
// its types: the relay declares the settings it needs, and
// cmd/hooxrelay/wire.go maps a Config onto them.
package config

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is a whole hooxrelay configuration. The zero value has no defaults
// set and no sources or targets, so it never validates; start from Default,
// Parse or Load. A Config is plain data: reading it from several goroutines
// is safe, changing it while others read is not (a reload builds a new one).
type Config struct {
	Server  Server   `yaml:"server"`
	Store   Store    `yaml:"store"`
	Dedup   Dedup    `yaml:"dedup"`
	Sources []Source `yaml:"sources"`
	Targets []Target `yaml:"targets"`
	Routes  []Route  `yaml:"routes"`
	Notify  []Notify `yaml:"notify"`
	Tracing Tracing  `yaml:"tracing"`

	// File is the path the config was loaded from, or the name given to
	// Parse; "" when it has neither. Error messages start with it.
	File string `yaml:"-"`

	// lines maps a key path such as "targets[2].url" to the line it was
	// written on, so that Validate can point at the line to fix.
	lines map[string]int
}

// Server is the ingress and admin HTTP servers' settings. Zero timeouts are
// invalid rather than "no timeout": an ingress without timeouts is an easy
// target for slow clients.
type Server struct {
	Listen      string    `yaml:"listen"`
	AdminListen string    `yaml:"admin_listen"`
	AdminToken  string    `yaml:"admin_token"`
	TLS         ServerTLS `yaml:"tls"`
	// TrustedProxies are the load balancers whose X-Forwarded-For is
	// believed: the client address is the last one in it that is not
	// a trusted proxy. Empty (the default) ignores the header, since any
	// client can send it.
	TrustedProxies []string `yaml:"trusted_proxies"`
	MaxBodyBytes   int64    `yaml:"max_body_bytes"`
	// MaxBufferedBodyBytes bounds the bytes of request bodies being read
	// (and held until answered) at once, across every source: past it a
	// webhook gets 503 and Retry-After. A key of this implementation.
	MaxBufferedBodyBytes int64    `yaml:"max_buffered_body_bytes"`
	ReadHeaderTimeout    Duration `yaml:"read_header_timeout"`
	ReadTimeout          Duration `yaml:"read_timeout"`
	WriteTimeout         Duration `yaml:"write_timeout"`
	IdleTimeout          Duration `yaml:"idle_timeout"`
	ShutdownTimeout      Duration `yaml:"shutdown_timeout"`
	// RejectedLog is how many refused webhook requests are kept in memory
	// for GET /api/v1/rejected; 0 keeps none.
	RejectedLog int `yaml:"rejected_log"`
}

// ServerTLS is the ingress certificate. Both fields empty (the zero value)
// means plain HTTP, for relays behind a TLS-terminating proxy.
type ServerTLS struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// Set reports whether TLS was asked for, even half-way (which Validate rejects).
func (t ServerTLS) Set() bool { return t.CertFile != "" || t.KeyFile != "" }

// Store says where events and deliveries are kept. Redis settings are only
// read when Kind is "redis".
type Store struct {
	Kind      string   `yaml:"kind"`
	Path      string   `yaml:"path"`
	Redis     Redis    `yaml:"redis"`
	Retention Duration `yaml:"retention"`
}

// Redis is the connection to a shared Redis store.
type Redis struct {
	URL    string `yaml:"url"`
	Prefix string `yaml:"prefix"`
	// Lease is how long a claim holds a delivery without being renewed: a
	// relay renews its claims while it works on them, so this is how soon
	// another relay takes over the claims of one that died.
	Lease Duration `yaml:"lease"`
}

// Dedup holds the duplicate-detection window. It has to outlast the sender's
// whole retry schedule, or a late retry is delivered twice.
type Dedup struct {
	TTL Duration `yaml:"ttl"`
}

// Source is one ingress endpoint. The zero RateLimit means no limit.
type Source struct {
	Name       string    `yaml:"name"`
	Path       string    `yaml:"path"`
	Verify     Verify    `yaml:"verify"`
	AllowCIDRs []string  `yaml:"allow_cidrs"`
	RateLimit  RateLimit `yaml:"rate_limit"`
}

// Verify says how a source proves that a request comes from the sender.
// Secrets is a list so that a secret can be rotated without downtime: any one
// matching passes.
type Verify struct {
	Kind      string   `yaml:"kind"`
	Header    string   `yaml:"header"`
	Secrets   []string `yaml:"secrets"`
	Tolerance Duration `yaml:"tolerance"`
}

// Verify kinds.
const (
	VerifyNone             = "none"
	VerifyToken            = "token"
	VerifyHMACSHA256       = "hmac-sha256"
	VerifyStandardWebhooks = "standard-webhooks"
)

// Store kinds.
const (
	StoreEmbedded = "embedded"
	StoreRedis    = "redis"
)

// RateLimit is a token bucket. RPS 0 means unlimited, which is why it is a
// valid value and not "unset".
type RateLimit struct {
	RPS   float64 `yaml:"rps"`
	Burst int     `yaml:"burst"`
}

// Target is one internal service that events are delivered to. Each target
// has its own limits so that a slow one never holds back the others.
type Target struct {
	Name          string            `yaml:"name"`
	URL           string            `yaml:"url"`
	Timeout       Duration          `yaml:"timeout"`
	MaxInFlight   int               `yaml:"max_in_flight"`
	RateLimit     RateLimit         `yaml:"rate_limit"`
	Retry         Retry             `yaml:"retry"`
	Breaker       Breaker           `yaml:"breaker"`
	Headers       map[string]string `yaml:"headers"`
	SigningSecret Secrets           `yaml:"signing_secret"`
	TLS           TargetTLS         `yaml:"tls"`
	// Request reshapes what the target gets; the zero value posts the
	// payload as it came. Its templates and program are compiled by the
	// command's checks (see Check's more), not by Validate.
	Request Request `yaml:"request"`
	// Success are the statuses that count as delivered; empty means any
	// 2xx.
	Success []int `yaml:"success"`
	// Notify names the notify entries that hear about this target; empty
	// means all of them.
	Notify []string `yaml:"notify"`
}

// Request is how a target's requests are shaped for a legacy endpoint:
// Method "" means POST, Body "" the payload as it came, Format "" json.
type Request struct {
	Method  string            `yaml:"method"`
	Body    string            `yaml:"body"`
	Format  string            `yaml:"format"`
	Headers map[string]string `yaml:"headers"`
	Auth    RequestAuth       `yaml:"auth"`
}

// RequestAuth is how a target's requests authenticate: kind none (or ""),
// basic (Username, Password), bearer (Token) or oauth2 client credentials
// (TokenURL, ClientID, ClientSecret, Scopes).
type RequestAuth struct {
	Kind         string   `yaml:"kind"`
	Username     string   `yaml:"username"`
	Password     string   `yaml:"password"`
	Token        string   `yaml:"token"`
	TokenURL     string   `yaml:"token_url"`
	ClientID     string   `yaml:"client_id"`
	ClientSecret string   `yaml:"client_secret"`
	Scopes       []string `yaml:"scopes"`
}

// TargetTLS is the client side of TLS to a target: a private CA and an
// optional client certificate. The zero value uses the system roots.
type TargetTLS struct {
	CAFile   string `yaml:"ca_file"`
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// Set reports whether any TLS setting was given.
func (t TargetTLS) Set() bool { return t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" }

// Retry is a target's retry policy. MaxAttempts counts the first attempt, so
// 1 means "never retry".
type Retry struct {
	MaxAttempts     int      `yaml:"max_attempts"`
	InitialInterval Duration `yaml:"initial_interval"`
	MaxInterval     Duration `yaml:"max_interval"`
	Multiplier      float64  `yaml:"multiplier"`
	Jitter          float64  `yaml:"jitter"`
	MaxAge          Duration `yaml:"max_age"`
}

// Breaker is a target's circuit breaker. Interval 0 means the closed-state
// counts are never cleared.
type Breaker struct {
	FailureRatio float64  `yaml:"failure_ratio"`
	MinRequests  int      `yaml:"min_requests"`
	Interval     Duration `yaml:"interval"`
	OpenTimeout  Duration `yaml:"open_timeout"`
}

// Route sends the events it matches to its targets. Every matching route
// contributes its targets; there is no "first match wins".
type Route struct {
	Name    string   `yaml:"name"`
	Match   Match    `yaml:"match"`
	Targets []string `yaml:"targets"`
}

// Match selects events. An empty list matches anything, so the zero Match
// matches every event.
type Match struct {
	Task   []string `yaml:"task"`
	Status []string `yaml:"status"`
	Where  []Cond   `yaml:"where"`
}

// Cond is one condition on the payload. Value keeps the type YAML gave it
// (string, int, float64, bool, []any or nil) because "eq 1" and "eq '1'"
// are different tests. Validate checks none of the three: what a
// condition means is the rules package's to judge (see Check's more).
type Cond struct {
	Path  string `yaml:"path"`
	Op    string `yaml:"op"`
	Value any    `yaml:"value"`
}

// Default returns a config with every documented default set and no
// sources, targets or routes: those have no sensible default, and a relay
// that silently listened on a made-up path would be worse than an error.
func Default() *Config {
	return &Config{
		Server: Server{
			Listen:               ":8080",
			AdminListen:          "127.0.0.1:9090",
			MaxBodyBytes:         1 << 20,
			MaxBufferedBodyBytes: 64 << 20,
			ReadHeaderTimeout:    Duration(5 * time.Second),
			ReadTimeout:          Duration(15 * time.Second),
			WriteTimeout:         Duration(15 * time.Second),
			IdleTimeout:          Duration(60 * time.Second),
			ShutdownTimeout:      Duration(30 * time.Second),
			RejectedLog:          1000,
		},
		Store: Store{
			Kind: StoreEmbedded,
			Path: "./data/store",
			Redis: Redis{
				URL:    "redis://127.0.0.1:6379/0",
				Prefix: "hooxrelay",
				Lease:  Duration(30 * time.Second),
			},
			Retention: Duration(168 * time.Hour),
		},
		Dedup:   Dedup{TTL: Duration(24 * time.Hour)},
		Tracing: Tracing{SampleRatio: 1},
	}
}

// DefaultSource returns the values a sources[] element starts from before
// its keys are decoded over it.
func DefaultSource() Source {
	return Source{
		Verify: Verify{Kind: VerifyNone, Tolerance: Duration(5 * time.Minute)},
	}
}

// DefaultTarget returns the values a targets[] element starts from before
// its keys are decoded over it.
func DefaultTarget() Target {
	return Target{
		Timeout:     Duration(10 * time.Second),
		MaxInFlight: 16,
		RateLimit:   RateLimit{RPS: 0, Burst: 1},
		Retry: Retry{
			MaxAttempts:     12,
			InitialInterval: Duration(time.Second),
			MaxInterval:     Duration(10 * time.Minute),
			Multiplier:      2,
			Jitter:          0.2,
			MaxAge:          Duration(24 * time.Hour),
		},
		Breaker: Breaker{
			FailureRatio: 0.5,
			MinRequests:  10,
			Interval:     Duration(60 * time.Second),
			OpenTimeout:  Duration(30 * time.Second),
		},
	}
}

// Load reads the file at path and checks it (see Check, which runs more
// too), reporting every problem at once. On any error it returns a nil
// Config, so that a failed reload can never half-apply.
func Load(path string, more ...func(*Config) error) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Check(data, path, more...)
}

// Line returns the line on which the key path (such as "targets[2].url",
// "sources[0]" or "routes[0].match.where[1].op") was written, or 0 when the
// key was not in the file.
func (c *Config) Line(path string) int {
	return c.lines[path]
}

// Target returns the target called name.
func (c *Config) Target(name string) (Target, bool) {
	for _, t := range c.Targets {
		if t.Name == name {
			return t, true
		}
	}
	return Target{}, false
}

// Duration is a time.Duration written as a Go duration string ("250ms",
// "10s", "24h"). A bare number is refused: "10" could mean seconds or
// nanoseconds, and guessing wrong is a silent outage.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String returns d the way it would be written in the file.
func (d Duration) String() string { return time.Duration(d).String() }

// UnmarshalYAML decodes a duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	n = resolveAlias(n)
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("must be a duration such as \"10s\", got %s", describe(n))
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("must be a duration such as \"250ms\", \"10s\" or \"24h\", got %q", n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML encodes d as a duration string, so that a marshalled config
// reads like the file it came from.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// Secrets is one secret or several. It exists so that signing_secret can be
// written as a plain string in the common case and as a list during
// rotation; "" decodes to an empty list.
type Secrets []string

// UnmarshalYAML decodes a string or a list of strings.
func (s *Secrets) UnmarshalYAML(n *yaml.Node) error {
	n = resolveAlias(n)
	switch {
	case isNull(n):
		*s = nil
	case n.Kind == yaml.ScalarNode:
		if n.Value == "" {
			*s = nil
		} else {
			*s = Secrets{n.Value}
		}
	case n.Kind == yaml.SequenceNode:
		out := make(Secrets, 0, len(n.Content))
		for i, e := range n.Content {
			e = resolveAlias(e)
			if e.Kind != yaml.ScalarNode || isNull(e) {
				return fmt.Errorf("item %d must be a string, got %s", i, describe(e))
			}
			out = append(out, e.Value)
		}
		*s = out
	default:
		return fmt.Errorf("must be a string or a list of strings, got %s", describe(n))
	}
	return nil
}

// MarshalYAML writes one secret as a string and several as a list, the way
// an operator would write them.
func (s Secrets) MarshalYAML() (any, error) {
	switch len(s) {
	case 0:
		return "", nil
	case 1:
		return s[0], nil
	}
	return []string(s), nil
}

// FieldError is one problem in a config file, located by file, line and key
// path so that the operator can go straight to it. Line is 0 when unknown
// (for example, a required key that is missing from an empty file).
type FieldError struct {
	File string
	Line int
	Path string
	Msg  string
}

// Error formats the problem as "file:line: path: message", leaving out what
// is unknown.
func (e *FieldError) Error() string {
	var s string
	switch {
	case e.File != "" && e.Line > 0:
		s = fmt.Sprintf("%s:%d: ", e.File, e.Line)
	case e.File != "":
		s = e.File + ": "
	case e.Line > 0:
		s = fmt.Sprintf("line %d: ", e.Line)
	}
	if e.Path != "" {
		s += e.Path + ": "
	}
	return s + e.Msg
}

// FieldErrors flattens an error returned by Parse, Validate or Load into its
// FieldErrors, in order, so that a caller can print one per line or count
// them. Errors that are not FieldErrors (such as a file that cannot be read)
// are left out.
func FieldErrors(err error) []*FieldError {
	var out []*FieldError
	var walk func(error)
	walk = func(err error) {
		if fe, ok := err.(*FieldError); ok {
			out = append(out, fe)
			return
		}
		switch u := err.(type) {
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				walk(e)
			}
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		}
	}
	if err != nil {
		walk(err)
	}
	return out
}

// joinSorted joins errs in line order, so that an operator reads them top
// to bottom through the file. Errors without a line keep their place at the
// top: they are about the file as a whole.
func joinSorted(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	line := func(err error) int {
		var fe *FieldError
		if errors.As(err, &fe) {
			return fe.Line
		}
		return 0
	}
	sorted := slices.Clone(errs)
	slices.SortStableFunc(sorted, func(a, b error) int { return line(a) - line(b) })
	return errors.Join(sorted...)
}
