package peers

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// blacklistInterval is how often BLACKLIST_URL is fetched (ElectrumX's
// 600 s).
const blacklistInterval = 10 * time.Minute

// refreshBlacklist fetches the blacklist every interval until ctx ends.
// A failed fetch keeps the list we have.
func (m *Manager) refreshBlacklist(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			m.updateBlacklist(ctx)
		}
	}
}

func (m *Manager) updateBlacklist(ctx context.Context) {
	if err := m.fetchBlacklist(ctx); err != nil && ctx.Err() == nil {
		m.log.Warn("blacklist not updated; keeping the previous one", "url", m.o.BlacklistURL, "err", err)
	}
}

// fetchBlacklist replaces the blacklist with the JSON list of strings
// at BlacklistURL.
func (m *Manager) fetchBlacklist(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.o.BlacklistURL, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %s", resp.Status)
	}
	var list []string
	if err := json.NewDecoder(io.LimitReader(resp.Body, 4<<20)).Decode(&list); err != nil {
		return fmt.Errorf("want a JSON list of strings: %w", err)
	}
	set := make(map[string]bool, len(list))
	for _, e := range list {
		set[strings.ToLower(strings.TrimSpace(e))] = true
	}
	m.mu.Lock()
	m.blacklist = set
	m.mu.Unlock()
	m.log.Info("blacklist updated", "entries", len(set))
	return nil
}

// blacklisted reports whether a peer at host, last connected to at
// ipAddr ("" if never), is listed: by name, by "*." and its last two
// labels, or by address. Call with mu held.
func (m *Manager) blacklisted(host, ipAddr string) bool {
	if len(m.blacklist) == 0 {
		return false
	}
	labels := strings.Split(strings.TrimSuffix(host, "."), ".")
	wild := "*." + strings.Join(labels[max(0, len(labels)-2):], ".")
	return m.blacklist[host] || m.blacklist[wild] || ipAddr != "" && m.blacklist[ipAddr]
}
