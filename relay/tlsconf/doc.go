// Package tlsconf turns the certificate files named in the config into
// *tls.Config values: one for the ingress listener (server.tls), whose
// certificate can be reloaded on SIGHUP without dropping connections, and
// one per target for outbound requests (targets[].tls), with a private CA
// and an optional client certificate for mutual TLS.
//
// Both sides refuse anything older than TLS 1.2. Errors name the file at
// fault and say what to fix.
package tlsconf
