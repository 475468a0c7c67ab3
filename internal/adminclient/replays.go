package adminclient

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"

	"github.com/hooxrelay/hooxrelay/relay"
)

// DryRunReplay counts what a replay of req would do, sending nothing: the
// events it would go over and the deliveries it would requeue or create.
// POST /api/v1/replays with dry_run.
func (c *Client) DryRunReplay(ctx context.Context, req relay.ReplayRequestJSON) (relay.ReplayDryRunJSON, error) {
	req.DryRun = true
	var ans relay.ReplayDryRunJSON
	err := c.postReplay(ctx, req, "events", &ans)
	return ans, err
}

// StartReplay starts a replay of req and returns it, running:
// POST /api/v1/replays.
func (c *Client) StartReplay(ctx context.Context, req relay.ReplayRequestJSON) (relay.ReplayJSON, error) {
	req.DryRun = false
	var ans relay.ReplayJSON
	err := c.postReplay(ctx, req, "replay_id", &ans)
	return ans, err
}

func (c *Client) postReplay(ctx context.Context, req relay.ReplayRequestJSON, key string, out any) error {
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	return c.callWith(ctx, http.MethodPost, "/replays", nil, body, key, out)
}

// Replays returns the replays, newest first, at most limit (0: the API's
// default): GET /api/v1/replays.
func (c *Client) Replays(ctx context.Context, limit int) ([]relay.ReplayJSON, error) {
	var ans struct {
		Replays []relay.ReplayJSON `json:"replays"`
	}
	err := c.call(ctx, http.MethodGet, "/replays", page(limit, ""), "replays", &ans)
	return ans.Replays, err
}

// Replay returns one replay and how far it got: GET /api/v1/replays/{id}.
func (c *Client) Replay(ctx context.Context, id string) (relay.ReplayJSON, error) {
	var ans relay.ReplayJSON
	err := c.call(ctx, http.MethodGet, "/replays/"+url.PathEscape(id), nil, "replay_id", &ans)
	return ans, err
}

// CancelReplay cancels a running replay and returns it as it then is:
// DELETE /api/v1/replays/{id}.
func (c *Client) CancelReplay(ctx context.Context, id string) (relay.ReplayJSON, error) {
	var ans relay.ReplayJSON
	err := c.call(ctx, http.MethodDelete, "/replays/"+url.PathEscape(id), nil, "replay_id", &ans)
	return ans, err
}
