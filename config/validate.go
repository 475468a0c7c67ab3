package config

import (
	"encoding/base64"
	"fmt"
	"maps"
	"math"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Validate checks the meaning of every value and reports every problem at
// once, joined with errors.Join, each a *FieldError located at the line of
// the key (or of the nearest enclosing key when the key was left out). It
// returns nil for a config that the relay can run, once its routes compile:
// route conditions are left to the rules package (see Check).
func (c *Config) Validate() error {
	v := &validator{c: c}
	v.server()
	v.store()
	v.sources()
	v.targets()
	v.routes()
	v.notify()
	return joinSorted(v.errs)
}

type validator struct {
	c    *Config
	errs []error
}

func (v *validator) add(path, format string, args ...any) {
	v.errs = append(v.errs, v.c.fieldError(path, fmt.Sprintf(format, args...)))
}

// addAt is add for a key that is usually missing from the file: it points
// at the line of the key at, whose value made path necessary, unless path
// was written after all.
func (v *validator) addAt(at, path, format string, args ...any) {
	fe := v.c.fieldError(at, fmt.Sprintf(format, args...))
	if l := v.c.lines[path]; l > 0 {
		fe.Line = l
	}
	fe.Path = path
	v.errs = append(v.errs, fe)
}

// fieldError locates path at its own line or, when the key was left out,
// at the line of the nearest enclosing key that was written.
func (c *Config) fieldError(path, msg string) *FieldError {
	return &FieldError{File: c.File, Line: c.nearestLine(path), Path: path, Msg: msg}
}

func (c *Config) nearestLine(path string) int {
	for p := path; p != ""; {
		if l := c.lines[p]; l > 0 {
			return l
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return 0
}

func (v *validator) positive(path string, d Duration) {
	if d <= 0 {
		v.add(path, "must be a positive duration such as \"10s\", got %q", d.String())
	}
}

func (v *validator) server() {
	s := v.c.Server
	v.hostPort("server.listen", s.Listen)
	if v.hostPort("server.admin_listen", s.AdminListen) && s.AdminToken == "" && !loopbackListen(s.AdminListen) {
		// Point at admin_listen: moving the listener is as good a fix as
		// adding a token.
		v.addAt("server.admin_listen", "server.admin_token", "is required when server.admin_listen (%q) is not a loopback address; set a token or listen on 127.0.0.1", s.AdminListen)
	}
	v.pair("server.tls", s.TLS.CertFile, s.TLS.KeyFile)
	for j, cidr := range s.TrustedProxies {
		if _, err := parseCIDR(cidr); err != nil {
			v.add(fmt.Sprintf("server.trusted_proxies[%d]", j), "must be an IP address or a CIDR such as \"10.0.0.0/8\", got %q", cidr)
		}
	}
	if s.MaxBodyBytes <= 0 {
		v.add("server.max_body_bytes", "must be a positive number of bytes such as 1048576, got %d", s.MaxBodyBytes)
	}
	if s.MaxBufferedBodyBytes < max(s.MaxBodyBytes, 1) {
		v.add("server.max_buffered_body_bytes", "must be a number of bytes at least server.max_body_bytes (%d), such as 67108864, got %d", s.MaxBodyBytes, s.MaxBufferedBodyBytes)
	}
	v.positive("server.read_header_timeout", s.ReadHeaderTimeout)
	v.positive("server.read_timeout", s.ReadTimeout)
	v.positive("server.write_timeout", s.WriteTimeout)
	v.positive("server.idle_timeout", s.IdleTimeout)
	v.positive("server.shutdown_timeout", s.ShutdownTimeout)
	if s.RejectedLog < 0 || s.RejectedLog > MaxRejectedLog {
		v.add("server.rejected_log", "must be a number of requests from 0 (keep none) to %d, such as 1000, got %d", MaxRejectedLog, s.RejectedLog)
	}
}

// MaxRejectedLog bounds server.rejected_log: each refused request kept
// holds up to a few KiB.
const MaxRejectedLog = 100000

// hostPort checks a listen address and reports whether it is valid. Port 0
// (any free port) is allowed: tests and the demo listen on 127.0.0.1:0.
func (v *validator) hostPort(path, addr string) bool {
	_, port, err := net.SplitHostPort(addr)
	if err == nil {
		_, err = strconv.ParseUint(port, 10, 16)
	}
	if err != nil {
		v.add(path, "must be host:port such as \":8080\" or \"127.0.0.1:8080\", got %q", addr)
		return false
	}
	return true
}

// loopbackListen reports whether addr only accepts local connections. An
// empty host listens on every interface, so it is not loopback.
func loopbackListen(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	return err == nil && loopbackHost(host)
}

func loopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// pair checks a certificate and its key: one without the other is always
// a mistake.
func (v *validator) pair(path, cert, key string) {
	switch {
	case cert != "" && key == "":
		v.addAt(path+".cert_file", path+".key_file", "is required when %s.cert_file is set", path)
	case cert == "" && key != "":
		v.addAt(path+".key_file", path+".cert_file", "is required when %s.key_file is set", path)
	}
}

func (v *validator) store() {
	s := v.c.Store
	switch s.Kind {
	case StoreEmbedded:
		if strings.TrimSpace(s.Path) == "" {
			v.add("store.path", "is required for the embedded store; set a directory such as ./data/store")
		}
	case StoreRedis:
		u, err := url.Parse(s.Redis.URL)
		switch {
		case err != nil || u.Host == "":
			v.add("store.redis.url", "must be a URL such as \"redis://127.0.0.1:6379/0\" (or rediss:// for TLS), got %q", redactURL(s.Redis.URL))
		case u.Scheme == "redis+sentinel" && strings.Trim(u.Path, "/") == "":
			v.add("store.redis.url", "must name the master after the sentinels, as in \"redis+sentinel://10.0.0.1:26379,10.0.0.2:26379/mymaster\", got %q", redactURL(s.Redis.URL))
		case u.Scheme != "redis" && u.Scheme != "rediss" && u.Scheme != "redis+sentinel" && u.Scheme != "redis+cluster":
			v.add("store.redis.url", "must be a URL such as \"redis://127.0.0.1:6379/0\" (or rediss:// for TLS, redis+sentinel:// or redis+cluster://), got %q", redactURL(s.Redis.URL))
		}
		if s.Redis.Prefix == "" {
			v.add("store.redis.prefix", "must not be empty: it keeps hooxrelay's keys apart from others in the same database")
		}
		if s.Redis.Lease.D() < time.Second {
			v.add("store.redis.lease", "must be at least 1s (claims are renewed every third of it), got %s", s.Redis.Lease.D())
		}
	default:
		v.add("store.kind", "must be %q or %q, got %q", StoreEmbedded, StoreRedis, s.Kind)
	}
	v.positive("store.retention", s.Retention)
	v.positive("dedup.ttl", v.c.Dedup.TTL)
	// A pruned event takes its dedup mark with it (there is never a mark
	// without its event), so a shorter retention would shorten the ttl.
	if s.Retention > 0 && v.c.Dedup.TTL > 0 && s.Retention < v.c.Dedup.TTL {
		v.add("store.retention", "must be at least dedup.ttl (%s), got %s: a deleted event takes its dedup mark with it", v.c.Dedup.TTL, s.Retention)
	}
}

// redactURL hides a password so that it does not end up in logs through
// an error message.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	return u.Redacted()
}

var nameRE = regexp.MustCompile(`^[a-z0-9_-]+$`)

// validName checks a source or target name. Names end up in metrics
// labels, delivery ids and URLs of the admin API, hence the small alphabet.
func (v *validator) validName(path, name string, seen map[string]string) {
	switch {
	case name == "":
		v.add(path, "is required; use lowercase letters, digits, _ and -")
		return
	case !nameRE.MatchString(name):
		v.add(path, "must be lowercase letters, digits, _ and - only, got %q", name)
	}
	if first, dup := seen[name]; dup {
		v.add(path, "duplicate name %q, already used by %s; names must be unique", name, first)
		return
	}
	seen[name] = strings.TrimSuffix(path, ".name")
}

func (v *validator) sources() {
	if len(v.c.Sources) == 0 {
		v.add("sources", "at least one source is required, such as {name: hoox, path: /hooks/hoox}")
	}
	names, paths := map[string]string{}, map[string]string{}
	for i, s := range v.c.Sources {
		p := fmt.Sprintf("sources[%d]", i)
		v.validName(p+".name", s.Name, names)
		v.sourcePath(p+".path", s.Path, paths)
		v.verify(p+".verify", s.Verify)
		for j, cidr := range s.AllowCIDRs {
			if _, err := parseCIDR(cidr); err != nil {
				v.add(fmt.Sprintf("%s.allow_cidrs[%d]", p, j), "must be an IP address or a CIDR such as \"10.0.0.0/8\", got %q", cidr)
			}
		}
		v.rateLimit(p+".rate_limit", s.RateLimit)
	}
}

// sourcePath keeps paths to characters that need no escaping and that the
// router treats literally (":" and "*" would start a wildcard).
var sourcePathRE = regexp.MustCompile(`^/[A-Za-z0-9/._~-]*$`)

func (v *validator) sourcePath(path, p string, seen map[string]string) {
	switch {
	case p == "":
		v.add(path, "is required, such as /hooks/hoox")
		return
	case !strings.HasPrefix(p, "/"):
		v.add(path, "must start with /, got %q", p)
	case !sourcePathRE.MatchString(p):
		v.add(path, "must contain only letters, digits and / . _ ~ - (no spaces, query or wildcards), got %q", p)
	}
	if first, dup := seen[p]; dup {
		v.add(path, "duplicate path %q, already used by %s; each source needs its own path", p, first)
		return
	}
	seen[p] = strings.TrimSuffix(path, ".path")
}

func validVerifyKind(k string) bool {
	switch k {
	case VerifyNone, VerifyToken, VerifyHMACSHA256, VerifyStandardWebhooks:
		return true
	}
	return false
}

func (v *validator) verify(path string, vf Verify) {
	if !validVerifyKind(vf.Kind) {
		v.add(path+".kind", "must be one of %q, %q, %q or %q, got %q", VerifyNone, VerifyToken, VerifyHMACSHA256, VerifyStandardWebhooks, vf.Kind)
		return
	}
	if vf.Kind == VerifyNone {
		// Secrets under kind none are most likely a forgotten kind: the
		// operator believes requests are checked while none are.
		if len(vf.Secrets) > 0 {
			v.add(path+".secrets", "are set but verify.kind is %q, so no request is checked; set verify.kind or remove them", vf.Kind)
		}
		if vf.Header != "" {
			v.add(path+".header", "is set but verify.kind is %q, so no request is checked; set verify.kind or remove it", vf.Kind)
		}
	} else {
		if len(vf.Secrets) == 0 {
			v.addAt(path+".kind", path+".secrets", "at least one secret is required for kind %q", vf.Kind)
		}
		for j, s := range vf.Secrets {
			sp := fmt.Sprintf("%s.secrets[%d]", path, j)
			switch {
			case s == "":
				v.add(sp, "is empty; remove it or set it (${NAME:-} expands to \"\" when NAME is unset)")
			case vf.Kind == VerifyStandardWebhooks:
				if err := checkWhsec(s); err != nil {
					v.add(sp, "%v", err)
				}
			}
		}
	}
	if vf.Kind == VerifyHMACSHA256 && vf.Header == "" {
		v.addAt(path+".kind", path+".header", "is required for kind %q: name the header that carries the signature", vf.Kind)
	}
	v.positive(path+".tolerance", vf.Tolerance)
}

// checkWhsec checks a Standard Webhooks secret. The secret itself is never
// put in the message: error messages end up in logs.
func checkWhsec(s string) error {
	b64, ok := strings.CutPrefix(s, "whsec_")
	if !ok {
		return fmt.Errorf("must be a Standard Webhooks secret \"whsec_<base64>\"; the value given does not start with whsec_")
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(key) == 0 {
		return fmt.Errorf("must be a Standard Webhooks secret \"whsec_<base64>\"; the part after whsec_ is not valid base64 (generate one with: echo whsec_$(openssl rand -base64 32))")
	}
	return nil
}

// parseCIDR accepts a prefix or a bare address, which means that one host.
func parseCIDR(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// ParseCIDR parses an allow_cidrs entry: a CIDR such as "10.0.0.0/8" or a
// bare address such as "192.0.2.7", which stands for that one address.
func ParseCIDR(s string) (netip.Prefix, error) { return parseCIDR(s) }

func (v *validator) rateLimit(path string, r RateLimit) {
	if r.RPS < 0 || math.IsNaN(r.RPS) {
		v.add(path+".rps", "must be 0 (unlimited) or more, got %v", r.RPS)
	}
	switch {
	case r.Burst < 0:
		v.add(path+".burst", "must be 0 or more, got %d", r.Burst)
	case r.RPS > 0 && r.Burst < 1:
		v.add(path+".burst", "must be at least 1 when rps is set (%v), got %d: a bucket of 0 lets nothing through", r.RPS, r.Burst)
	}
}

func (v *validator) targets() {
	if len(v.c.Targets) == 0 {
		v.add("targets", "at least one target is required, such as {name: media, url: https://media.internal/hooks/hoox}")
	}
	names := map[string]string{}
	for i, t := range v.c.Targets {
		p := fmt.Sprintf("targets[%d]", i)
		v.validName(p+".name", t.Name, names)
		v.targetURL(p+".url", t.URL)
		v.positive(p+".timeout", t.Timeout)
		if t.MaxInFlight < 1 {
			v.add(p+".max_in_flight", "must be at least 1, got %d", t.MaxInFlight)
		}
		v.rateLimit(p+".rate_limit", t.RateLimit)
		v.retry(p+".retry", t.Retry)
		v.breaker(p+".breaker", t.Breaker)
		v.headers(p+".headers", t.Headers)
		if len(t.SigningSecret) > 2 {
			v.add(p+".signing_secret", "has %d secrets; give at most 2 (the old and the new one during a rotation)", len(t.SigningSecret))
		}
		for j, s := range t.SigningSecret {
			sp := p + ".signing_secret"
			if len(t.SigningSecret) > 1 {
				sp = fmt.Sprintf("%s[%d]", sp, j)
			}
			if err := checkWhsec(s); err != nil {
				v.add(sp, "%v", err)
			}
		}
		v.pair(p+".tls", t.TLS.CertFile, t.TLS.KeyFile)
		v.headers(p+".request.headers", t.Request.Headers)
		if a := t.Request.Auth.Kind; a != "" && a != "none" {
			for name := range t.Headers {
				if strings.EqualFold(name, "Authorization") {
					v.add(p+".headers."+name, "is set by request.auth (kind %s); remove it here", a)
				}
			}
		}
		for j, s := range t.Success {
			if s < 100 || s > 599 {
				v.add(fmt.Sprintf("%s.success[%d]", p, j), "must be an HTTP status from 100 to 599, such as 200, got %d", s)
			}
		}
	}
}

func (v *validator) targetURL(path, raw string) {
	if raw == "" {
		v.add(path, "is required, such as https://media.internal/hooks/hoox")
		return
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Hostname() == "" {
		v.add(path, "must be an absolute URL such as https://media.internal/hooks/hoox, got %q", redactURL(raw))
		return
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !loopbackHost(u.Hostname()) {
			v.add(path, "must be https, got %q: plain http is only allowed to localhost, 127.0.0.0/8 and ::1", redactURL(raw))
		}
	default:
		v.add(path, "must be an https URL, got scheme %q", u.Scheme)
	}
	if u.User != nil {
		// Credentials in the URL would show up in logs and in the admin
		// API's target list.
		v.add(path, "must not contain credentials; send them in headers, such as headers: {Authorization: \"Bearer ${TOKEN}\"}")
	}
}

func (v *validator) retry(path string, r Retry) {
	if r.MaxAttempts < 1 {
		v.add(path+".max_attempts", "must be at least 1 (the first attempt counts), got %d", r.MaxAttempts)
	}
	v.positive(path+".initial_interval", r.InitialInterval)
	if r.MaxInterval < r.InitialInterval {
		v.add(path+".max_interval", "must be at least initial_interval (%s), got %q", r.InitialInterval, r.MaxInterval.String())
	}
	if r.Multiplier < 1 {
		v.add(path+".multiplier", "must be at least 1 (1 = constant delays), got %v", r.Multiplier)
	}
	if r.Jitter < 0 || r.Jitter >= 1 {
		v.add(path+".jitter", "must be at least 0 and less than 1 (0 = exact delays), got %v", r.Jitter)
	}
	v.positive(path+".max_age", r.MaxAge)
}

func (v *validator) breaker(path string, b Breaker) {
	if !(b.FailureRatio > 0 && b.FailureRatio <= 1) {
		v.add(path+".failure_ratio", "must be more than 0 and at most 1, such as 0.5, got %v", b.FailureRatio)
	}
	if b.MinRequests < 1 {
		v.add(path+".min_requests", "must be at least 1, got %d", b.MinRequests)
	}
	if b.Interval < 0 {
		v.add(path+".interval", "must be 0 (never reset the counts) or a positive duration, got %q", b.Interval.String())
	}
	v.positive(path+".open_timeout", b.OpenTimeout)
}

// reservedHeaders are set by the relay on every delivery; a configured
// value would either be overwritten or break the delivery contract.
var reservedHeaders = []string{
	"Content-Type", "User-Agent", "Webhook-Id", "Webhook-Timestamp", "Webhook-Signature",
	"Hooxrelay-Task", "Hooxrelay-Attempt", "Content-Length", "Host",
}

func (v *validator) headers(path string, h map[string]string) {
	seen := map[string]string{}
	for _, name := range slices.Sorted(maps.Keys(h)) {
		p := path + "." + name
		switch {
		case !validToken(name):
			v.add(p, "is not a valid HTTP header name: use letters, digits and !#$%%&'*+-.^_`|~ only, got %q", name)
		case isReserved(name):
			v.add(p, "is set by hooxrelay on every delivery and cannot be configured; remove it")
		}
		canon := strings.ToLower(name)
		if first, dup := seen[canon]; dup {
			v.add(p, "duplicates header %q (header names ignore case); keep one", first)
		}
		seen[canon] = name
		if strings.ContainsAny(h[name], "\r\n\x00") {
			v.add(p, "value must not contain line breaks or NUL")
		}
	}
}

func isReserved(name string) bool {
	for _, r := range reservedHeaders {
		if strings.EqualFold(r, name) {
			return true
		}
	}
	return false
}

// validToken reports whether s is an RFC 9110 token, the syntax of a header
// name.
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

func (v *validator) routes() {
	names := map[string]string{}
	for i, r := range v.c.Routes {
		p := fmt.Sprintf("routes[%d]", i)
		switch name := strings.TrimSpace(r.Name); {
		case name == "":
			v.add(p+".name", "is required: it names the route in logs and in hooxrelay check")
		default:
			if first, dup := names[r.Name]; dup {
				v.add(p+".name", "duplicate name %q, already used by %s; names must be unique", r.Name, first)
			} else {
				names[r.Name] = p
			}
		}
		v.nonEmpty(p+".match.task", r.Match.Task)
		v.nonEmpty(p+".match.status", r.Match.Status)
		if len(r.Targets) == 0 {
			v.add(p+".targets", "at least one target is required, such as targets: [%s]", v.someTarget())
		}
		for j, t := range r.Targets {
			if _, ok := v.c.Target(t); !ok {
				v.add(fmt.Sprintf("%s.targets[%d]", p, j), "unknown target %q; define it under targets: or use one of %s", t, strings.Join(v.targetNames(), ", "))
			}
		}
	}
}

func (v *validator) nonEmpty(path string, list []string) {
	for j, s := range list {
		if strings.TrimSpace(s) == "" {
			v.add(fmt.Sprintf("%s[%d]", path, j), "is empty and would never match; remove it")
		}
	}
}

func (v *validator) targetNames() []string {
	var names []string
	for _, t := range v.c.Targets {
		if q := strconv.Quote(t.Name); t.Name != "" && !slices.Contains(names, q) {
			names = append(names, q)
		}
	}
	if len(names) == 0 {
		return []string{"(none defined)"}
	}
	return names
}

func (v *validator) someTarget() string {
	if len(v.c.Targets) > 0 && v.c.Targets[0].Name != "" {
		return v.c.Targets[0].Name
	}
	return "media"
}
