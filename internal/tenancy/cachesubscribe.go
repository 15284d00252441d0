package tenancy

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"time"

	"github.com/redis/go-redis/v9"
)

const (
	pingEvery = time.Second // an idle subscription is checked this often
	retryMin  = 100 * time.Millisecond
	retryMax  = time.Second
)

// Run applies invalidations published by every process until ctx is done.
// It resubscribes by itself when Redis comes back; on every (re)subscription
// it drops the in-process entries, since messages may have been missed, and
// publishes the invalidations this process could not publish meanwhile.
func (c *CachedStore) Run(ctx context.Context) {
	if c.rdb == nil {
		<-ctx.Done()
		return
	}
	ps := c.rdb.Subscribe(ctx, c.channel())
	defer ps.Close()
	wait := retryMin
	for {
		msg, err := ps.ReceiveTimeout(ctx, pingEvery)
		if ctx.Err() != nil {
			c.live.Store(false)
			return
		}
		if err != nil {
			if isTimeout(err) {
				if perr := ps.Ping(ctx); perr != nil {
					c.lost(perr)
				}
				c.flushPending(ctx)
				continue
			}
			c.lost(err)
			select {
			case <-ctx.Done():
			case <-time.After(wait):
			}
			wait = min(2*wait, retryMax)
			continue
		}
		wait = retryMin
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				c.purgeLocal()
				c.redisPause.Store(0)
				if !c.live.Swap(true) {
					c.log.Info("tenant cache: receiving invalidations", "channel", m.Channel)
				}
				c.flushPending(ctx)
			}
		case *redis.Message:
			var inv invalidation
			if err := json.Unmarshal([]byte(m.Payload), &inv); err != nil {
				c.log.Warn("tenant cache: ignored malformed invalidation", "error", err)
				continue
			}
			c.applyLocal(inv)
		}
	}
}

// lost marks the subscription down: in-process entries are then trusted only
// briefly, and Redis is skipped for a moment.
func (c *CachedStore) lost(err error) {
	if c.live.Swap(false) {
		c.log.Warn("tenant cache: invalidation subscription lost, resubscribing", "error", err)
	}
	c.redisFailed("subscribe", err)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
