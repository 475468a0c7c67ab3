package config

import "fmt"

// notYetSupported rejects the settings that the file format already has but
// this version of hooxrelay does not implement yet. An operator who sets
// one must hear so at once rather than believe, say, that signatures are
// being checked. Each feature is one block here; the change that implements
// it deletes its block.
func notYetSupported(c *Config) []error {
	var errs []error
	add := func(path, msg string) { errs = append(errs, c.fieldError(path, msg)) }

	if c.Server.TLS.Set() {
		add("server.tls", "is not supported yet; remove it and terminate TLS in a proxy in front of hooxrelay")
	}
	for i, s := range c.Sources {
		p := fmt.Sprintf("sources[%d]", i)
		if s.Verify.Kind != VerifyNone && validVerifyKind(s.Verify.Kind) {
			add(p+".verify.kind", fmt.Sprintf(`%q is not supported yet; use "none" and restrict access with a firewall or a proxy`, s.Verify.Kind))
		}
		if len(s.AllowCIDRs) > 0 {
			add(p+".allow_cidrs", "is not supported yet; remove it and restrict source addresses with a firewall or a proxy")
		}
	}
	for i, t := range c.Targets {
		p := fmt.Sprintf("targets[%d]", i)
		if t.TLS.Set() {
			add(p+".tls", "is not supported yet; remove it (targets are reached with the system's CA roots and no client certificate)")
		}
		if len(t.SigningSecret) > 0 {
			add(p+".signing_secret", "is not supported yet; remove it (outbound requests are not signed in this version)")
		}
	}
	return errs
}
