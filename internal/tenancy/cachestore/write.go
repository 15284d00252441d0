package cachestore

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/your-org/tenantkit/internal/tenancy"
)

// invalidation names the entries a write changed; it is published to every
// process (including the writer) as JSON.
type invalidation struct {
	ID         uuid.UUID `json:"id,omitzero"`
	Identifier string    `json:"identifier,omitempty"`
	APIKeyHash string    `json:"api_key_hash,omitempty"` // sha256 hex, never the key
	// APIKeyHashes are the keys of a deleted tenant.
	APIKeyHashes []string `json:"api_key_hashes,omitempty"`
}

func (inv invalidation) keys() []localKey {
	var ks []localKey
	if inv.ID != uuid.Nil {
		ks = append(ks, localKey{kind: kindID, id: inv.ID})
	}
	if inv.Identifier != "" {
		ks = append(ks, localKey{kind: kindIdentifier, name: inv.Identifier})
	}
	for _, h := range append([]string{inv.APIKeyHash}, inv.APIKeyHashes...) {
		if b, err := hex.DecodeString(h); err == nil && len(b) == 32 {
			ks = append(ks, localKey{kind: kindAPIKey, hash: [32]byte(b)})
		}
	}
	return ks
}

// Create registers t and replaces any negative entry for its id or identifier.
func (c *Store) Create(ctx context.Context, t *tenancy.Tenant) error {
	if err := c.store.Create(ctx, t); err != nil {
		return err
	}
	c.written(ctx, invalidation{ID: t.ID, Identifier: t.Identifier},
		map[localKey]fillResult{
			{kind: kindID, id: t.ID}:                   {tenant: t},
			{kind: kindIdentifier, name: t.Identifier}: {id: t.ID},
		})
	return nil
}

// Update changes the tenant; every process sees the change (a suspension
// takes effect) as soon as it applies the published invalidation.
func (c *Store) Update(ctx context.Context, id uuid.UUID, u tenancy.TenantUpdate) (*tenancy.Tenant, error) {
	t, err := c.store.Update(ctx, id, u)
	if err != nil {
		return nil, err
	}
	c.written(ctx, invalidation{ID: id}, map[localKey]fillResult{{kind: kindID, id: id}: {tenant: t}})
	return t, nil
}

// Delete removes the tenant and leaves tombstones for its id, identifier and
// API keys in every process.
func (c *Store) Delete(ctx context.Context, id uuid.UUID) error {
	t, err := c.store.TenantByID(ctx, id)
	if err != nil {
		return err
	}
	hashes, err := c.store.DeleteWithKeys(ctx, id)
	if err != nil {
		return err
	}
	inv := invalidation{ID: id, Identifier: t.Identifier}
	entries := map[localKey]fillResult{
		{kind: kindID, id: id}:                     {},
		{kind: kindIdentifier, name: t.Identifier}: {},
	}
	for _, h := range hashes {
		if len(h) != 32 {
			continue
		}
		inv.APIKeyHashes = append(inv.APIKeyHashes, hex.EncodeToString(h))
		entries[localKey{kind: kindAPIKey, hash: [32]byte(h)}] = fillResult{}
	}
	c.written(ctx, inv, entries)
	return nil
}

// CreateAPIKey issues a key; its entry is written through by hash.
func (c *Store) CreateAPIKey(ctx context.Context, tenantID uuid.UUID, name string) (*tenancy.APIKey, string, error) {
	k, secret, err := c.store.CreateAPIKey(ctx, tenantID, name)
	if err != nil {
		return nil, "", err
	}
	h := tenancy.HashAPIKey(secret)
	c.written(ctx, invalidation{APIKeyHash: hex.EncodeToString(h)},
		map[localKey]fillResult{{kind: kindAPIKey, hash: [32]byte(h)}: {id: tenantID}})
	return k, secret, nil
}

// RevokeAPIKey revokes the key; every process stops accepting it as soon as
// it applies the published invalidation.
func (c *Store) RevokeAPIKey(ctx context.Context, tenantID, keyID uuid.UUID) error {
	h, err := c.store.RevokeAPIKeyHash(ctx, tenantID, keyID)
	if err != nil {
		return err
	}
	c.written(ctx, invalidation{APIKeyHash: hex.EncodeToString(h)},
		map[localKey]fillResult{{kind: kindAPIKey, hash: [32]byte(h)}: {}})
	return nil
}

// written runs after a successful write to the store: it overwrites the
// Redis entries (unconditionally, so they beat in-flight fills), drops the
// local ones and publishes inv, in that order, so that a process reacting to
// the message reads the new entries. If Redis fails, inv is kept and
// published when Redis answers again.
func (c *Store) written(ctx context.Context, inv invalidation, entries map[localKey]fillResult) {
	ctx = context.WithoutCancel(ctx) // the store changed: the caches must follow
	err := errNoRedis
	if c.redisUsable() {
		err = c.writeThrough(ctx, inv, entries)
	}
	c.applyLocal(inv)
	if err != nil {
		if err != errNoRedis {
			c.redisFailed("invalidate", err)
		}
		c.addPending(inv)
	}
}

var errNoRedis = errors.New("redis not usable")

func (c *Store) writeThrough(ctx context.Context, inv invalidation, entries map[localKey]fillResult) error {
	msg, _ := json.Marshal(inv)
	ctx, cancel := context.WithTimeout(ctx, redisOpTimeout)
	defer cancel()
	_, err := c.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for k, r := range entries {
			v, ttl := c.encode(r)
			p.Set(ctx, c.redisKey(k), v, ttl)
		}
		p.Publish(ctx, c.channel(), msg)
		return nil
	})
	if err == nil {
		for range entries {
			c.metrics.Invalidation(tenancy.LevelRedis)
		}
	}
	return err
}

// applyLocal drops inv's in-process entries and any fill in flight for them.
func (c *Store) applyLocal(inv invalidation) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	for _, k := range inv.keys() {
		c.pos.Remove(k)
		c.neg.Remove(k)
		c.sf.Forget(c.redisKey(k))
		c.metrics.Invalidation(tenancy.LevelMemory)
	}
}

// purgeLocal drops every in-process entry: after a gap in the subscription,
// invalidations may have been missed.
func (c *Store) purgeLocal() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	c.pos.Purge()
	c.neg.Purge()
	c.metrics.Invalidation(tenancy.LevelMemory)
}

const maxPending = 10_000

func (c *Store) addPending(inv invalidation) {
	c.pendingMu.Lock()
	defer c.pendingMu.Unlock()
	if len(c.pending) >= maxPending {
		c.pending = c.pending[1:]
		c.log.Error("tenant cache: too many unpublished invalidations, dropped the oldest")
	}
	c.pending = append(c.pending, inv)
}

// flushPending deletes the Redis entries of invalidations that could not be
// written and publishes them. It deletes rather than writes through: newer
// writes may have happened since.
func (c *Store) flushPending(ctx context.Context) {
	c.pendingMu.Lock()
	p := c.pending
	c.pending = nil
	c.pendingMu.Unlock()
	if len(p) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 5*redisOpTimeout)
	defer cancel()
	_, err := c.rdb.Pipelined(ctx, func(pl redis.Pipeliner) error {
		for _, inv := range p {
			msg, _ := json.Marshal(inv)
			for _, k := range inv.keys() {
				pl.Del(ctx, c.redisKey(k))
			}
			pl.Publish(ctx, c.channel(), msg)
		}
		return nil
	})
	if err != nil {
		c.pendingMu.Lock()
		c.pending = append(p, c.pending...)
		c.pendingMu.Unlock()
		return
	}
	c.log.Info("tenant cache: published invalidations held while Redis was unavailable", "count", len(p))
}
