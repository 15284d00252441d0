package cachestore

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"time"

	"github.com/redis/go-redis/v9"
)

const (
	pingEvery = 500 * time.Millisecond // an idle subscription is checked this often
	silentMax = 3 * pingEvery          // no answer to pings for this long: the connection is dead
	retryMin  = 100 * time.Millisecond
	retryMax  = time.Second
)

var errSilent = errors.New("redis stopped answering pings")

// Run applies invalidations published by every process until ctx is done.
// It resubscribes by itself when Redis comes back; on every (re)subscription
// it drops the in-process entries, since messages may have been missed, and
// publishes the invalidations this process could not publish meanwhile.
func (c *Store) Run(ctx context.Context) {
	defer c.live.Store(false)
	if c.rdb == nil {
		<-ctx.Done()
		return
	}
	for ctx.Err() == nil {
		c.subscribe(ctx)
	}
}

// subscribe receives on one subscription until ctx ends or the connection
// goes silent (a network partition closes nothing): then Run starts afresh.
func (c *Store) subscribe(ctx context.Context) {
	ps := c.rdb.Subscribe(ctx, c.channel())
	defer ps.Close()
	heard := time.Now()
	wait := retryMin
	for {
		msg, err := ps.ReceiveTimeout(ctx, pingEvery)
		if ctx.Err() != nil {
			return
		}
		switch {
		case err == nil:
			heard, wait = time.Now(), retryMin
		case isTimeout(err):
			if time.Since(heard) > silentMax {
				c.lost(errSilent)
				return
			}
			if perr := ps.Ping(ctx); perr != nil {
				c.lost(perr)
			}
			c.flushPending(ctx)
			continue
		default: // go-redis reconnects and resubscribes on the next receive
			c.lost(err)
			select {
			case <-ctx.Done():
			case <-time.After(wait):
			}
			wait = min(2*wait, retryMax)
			continue
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				c.purgeLocal()
				c.redisPause.Store(0)
				if !c.live.Swap(true) {
					c.log.Info("tenant cache: receiving invalidations", "channel", m.Channel)
				}
			}
		case *redis.Message:
			var inv invalidation
			if err := json.Unmarshal([]byte(m.Payload), &inv); err != nil {
				c.log.Warn("tenant cache: ignored malformed invalidation", "error", err)
				continue
			}
			c.applyLocal(inv)
		}
		c.flushPending(ctx) // also on a busy channel, whose receives never time out
	}
}

// lost marks the subscription down: in-process entries are then trusted only
// briefly, and Redis is skipped for a moment.
func (c *Store) lost(err error) {
	if c.live.Swap(false) {
		c.log.Warn("tenant cache: invalidation subscription lost, resubscribing", "error", err)
	}
	c.redisFailed("subscribe", err)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
