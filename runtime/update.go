package runtime

import (
	"context"
	"errors"
	"fmt"

	"github.com/opencontainers/runc/libcontainer"
)

// UpdateOptions are those of `cairn update`: a nil field leaves the
// container's value as it is.
type UpdateOptions struct {
	NanoCPUs          *int64 // --cpus
	CpuShares         *int64
	CpuPeriod         *int64
	CpuQuota          *int64
	CpusetCpus        *string
	CpusetMems        *string
	Memory            *int64
	MemorySwap        *int64
	MemoryReservation *int64
	PidsLimit         *int64 // 0 or -1: unlimited
	BlkioWeight       *uint16
	RestartPolicy     *RestartPolicy
}

// Update changes the limits (and restart policy) of container ref, as
// `docker update` does: those of a running container are set on its cgroups
// at once (libcontainer's Set), then recorded; a container that does not run
// only has them recorded, for its next start. What fails to apply is not
// recorded.
func (s *Store) Update(ctx context.Context, ref string, o UpdateOptions) (*Container, error) {
	id, err := s.Resolve(ref)
	if err != nil {
		return nil, err
	}
	c, err := s.update(ctx, id, func(c *Container) error {
		h := c.Host // a copy: the record changes only if all goes well
		if err := applyUpdate(&h, o); err != nil {
			return err
		}
		if c.Live() {
			if err := s.setResources(id, &h); err != nil && !errors.Is(err, ErrNotRunning) {
				return fmt.Errorf("Cannot update container %s: %w", ShortID(id), err)
			}
		}
		c.Host = h
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.emit(c, "update", nil)
	return c, nil
}

// applyUpdate sets o's values in h, checked as Docker's daemon checks them.
func applyUpdate(h *HostConfig, o UpdateOptions) error {
	if o.RestartPolicy != nil {
		if h.AutoRemove && o.RestartPolicy.Name != "" && o.RestartPolicy.Name != "no" {
			return fmt.Errorf("%w: Restart policy cannot be updated because AutoRemove is enabled for the container", ErrInvalid)
		}
		p := *o.RestartPolicy
		if err := checkRestartPolicy(&p); err != nil {
			return err
		}
		h.RestartPolicy = p
	}
	if o.NanoCPUs != nil && *o.NanoCPUs != 0 {
		if h.CpuQuota > 0 && o.CpuQuota == nil {
			return fmt.Errorf("%w: Conflicting options: Nano CPUs cannot be updated as CPU Quota has already been set", ErrInvalid)
		}
		h.NanoCPUs = *o.NanoCPUs
	}
	if o.CpuQuota != nil && *o.CpuQuota != 0 {
		if h.NanoCPUs > 0 && o.NanoCPUs == nil {
			return fmt.Errorf("%w: Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set", ErrInvalid)
		}
		h.CpuQuota = *o.CpuQuota
	}
	if o.CpuPeriod != nil && *o.CpuPeriod != 0 {
		if h.NanoCPUs > 0 && o.NanoCPUs == nil {
			return fmt.Errorf("%w: Conflicting options: CPU Period cannot be updated as NanoCPUs has already been set", ErrInvalid)
		}
		h.CpuPeriod = *o.CpuPeriod
	}
	if o.CpuShares != nil && *o.CpuShares != 0 {
		h.CpuShares = *o.CpuShares
	}
	if o.CpusetCpus != nil && *o.CpusetCpus != "" {
		h.CpusetCpus = *o.CpusetCpus
	}
	if o.CpusetMems != nil && *o.CpusetMems != "" {
		h.CpusetMems = *o.CpusetMems
	}
	if o.Memory != nil && *o.Memory != 0 {
		if o.MemorySwap == nil && h.MemorySwap > 0 && *o.Memory > h.MemorySwap {
			return fmt.Errorf("%w: Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time", ErrInvalid)
		}
		h.Memory = *o.Memory
	}
	if o.MemorySwap != nil && *o.MemorySwap != 0 {
		h.MemorySwap = *o.MemorySwap
	}
	if o.MemoryReservation != nil && *o.MemoryReservation != 0 {
		h.MemoryReservation = *o.MemoryReservation
	}
	if o.PidsLimit != nil {
		h.PidsLimit = max(*o.PidsLimit, 0)
	}
	if o.BlkioWeight != nil && *o.BlkioWeight != 0 {
		h.BlkioWeight = *o.BlkioWeight
	}
	if err := checkRootlessLimits(h); err != nil {
		return err
	}
	return checkResources(h)
}

// setResources sets h's limits on the cgroups of running container id.
func (s *Store) setResources(id string, h *HostConfig) error {
	lc, err := libcontainer.Load(s.state, id)
	if errors.Is(err, libcontainer.ErrNotExist) {
		return ErrNotRunning
	} else if err != nil {
		return err
	}
	r, err := resources(h)
	if err != nil {
		return err
	}
	cfg := lc.Config()
	cr := cfg.Cgroups.Resources
	if m := r.Memory; m != nil {
		if m.Limit != nil {
			cr.Memory = *m.Limit
		}
		if m.Swap != nil {
			cr.MemorySwap = *m.Swap
		}
		if m.Reservation != nil {
			cr.MemoryReservation = *m.Reservation
		}
	}
	if c := r.CPU; c != nil {
		if c.Shares != nil {
			cr.CpuShares = *c.Shares
		}
		if c.Quota != nil {
			cr.CpuQuota = *c.Quota
		}
		if c.Period != nil {
			cr.CpuPeriod = *c.Period
		}
		cr.CpusetCpus, cr.CpusetMems = c.Cpus, c.Mems
	}
	unlimited := int64(-1)
	cr.PidsLimit = &unlimited
	if r.Pids != nil {
		cr.PidsLimit = r.Pids.Limit
	}
	if b := r.BlockIO; b != nil && b.Weight != nil {
		cr.BlkioWeight = *b.Weight
	}
	cr.SkipDevices = true // as runc update: the device rules stay as they are
	return lc.Set(cfg)
}
