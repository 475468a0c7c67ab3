package relay

// Durability is what a store tells of its acks: whether an event it acked
// survives a crash of the storage, and the settings that decide it.
// GET /api/v1/status shows it (docs/http.md).
type Durability struct {
	// Loss is what can lose acked events: "none"; "host_failure" (a crash
	// of the storage's host or OS loses the last writes); "restart" (the
	// storage stopping loses what it wrote since its last snapshot); or
	// "unknown" (the settings could not be read).
	Loss string `json:"loss"`
	// Settings are the settings read, by name.
	Settings map[string]string `json:"settings,omitempty"`
	// Warning names the setting to change, when Loss is not "none".
	Warning string `json:"warning,omitempty"`
}

// Durability losses.
const (
	LossNone        = "none"
	LossHostFailure = "host_failure"
	LossRestart     = "restart"
	LossUnknown     = "unknown"
)

// DurabilityReporter is a Store that reads its storage's durability
// settings at start; Durability returns nil until it has.
type DurabilityReporter interface {
	Durability() *Durability
}
