/*
 * cmsdk: ARM CMSDK APB UART and timer models (as on the MPS2 boards and
 * in QEMU's mps2-an385), created from a board file's devices list.
 *
 * UART: transmit is immediate (TXFULL never set) and goes to the console
 * when the device is the board's console; receive takes bytes from the
 * machine's input queue, one at a time, so RXFULL follows the input.
 * Interrupt lines are levels: TX = INTSTATUS.TX && CTRL.TXIRQEN,
 * RX = INTSTATUS.RX && CTRL.RXIRQEN.
 * Timer: VALUE counts down at the CPU clock from RELOAD; reaching 0 sets
 * INTSTATUS and, with CTRL.IRQEN, raises the interrupt.
 *
 * Threads: the machine's owner thread (Unicorn MMIO callbacks).
 */
#include <stdlib.h>
#include <string.h>

#include "rehost/machine.h"

struct uart_state {
	uint32_t ctrl, intstatus, bauddiv, state_ovr;
	int32_t rx; /* byte held in the receive buffer, -1 when empty */
};

struct timer_state {
	uint32_t ctrl, reload, intstatus;
	uint32_t value; /* while stopped */
	uint64_t zero_at; /* icount when VALUE reaches 0, while running */
};

/* ---- UART ---- */

static void uart_update(struct ms_rh_dev *d)
{
	struct uart_state *s = d->state;

	ms__rh_irq_level(d->m, d->irq[1], (s->intstatus & 1) && (s->ctrl & 4));
	ms__rh_irq_level(d->m, d->irq[0], (s->intstatus & 2) && (s->ctrl & 8));
}

/* Move the next input byte into the receive buffer if it is empty. */
static void uart_fill(struct ms_rh_dev *d)
{
	struct uart_state *s = d->state;
	int c;

	if (!d->console || s->rx >= 0 || !(s->ctrl & 2))
		return;
	c = ms_rh_machine_input_get(d->m);
	if (c < 0)
		return;
	s->rx = c;
	s->intstatus |= 2;
	uart_update(d);
}

static uint64_t uart_read(struct ms_rh_dev *d, uint32_t off, unsigned size)
{
	struct uart_state *s = d->state;
	uint32_t v = 0;

	switch (off) {
	case 0x00:
		uart_fill(d);
		if (s->rx >= 0) {
			v = (uint32_t)s->rx;
			s->rx = -1;
			uart_fill(d);
		}
		break;
	case 0x04:
		uart_fill(d);
		v = (s->rx >= 0 ? 2u : 0u) | s->state_ovr;
		break;
	case 0x08:
		v = s->ctrl;
		break;
	case 0x0c:
		v = s->intstatus;
		break;
	case 0x10:
		v = s->bauddiv;
		break;
	case 0xfe0:
		v = 0x21;
		break;
	case 0xfe4:
		v = 0xb8;
		break;
	case 0xfe8:
		v = 0x1b;
		break;
	default:
		v = 0;
		break;
	}
	return v;
}

static void uart_write(struct ms_rh_dev *d, uint32_t off, unsigned size, uint64_t val)
{
	struct uart_state *s = d->state;
	uint8_t b;

	switch (off) {
	case 0x00:
		if (!(s->ctrl & 1))
			break;
		b = (uint8_t)val;
		if (d->console)
			ms__rh_console_out(d->m, &b, 1);
		/* The byte is sent at once: the transmit interrupt reports an empty buffer. */
		s->intstatus |= 1;
		uart_update(d);
		break;
	case 0x04:
		s->state_ovr &= ~((uint32_t)val & 0xc);
		break;
	case 0x08:
		s->ctrl = (uint32_t)val & 0x7f;
		uart_fill(d);
		uart_update(d);
		break;
	case 0x0c:
		s->intstatus &= ~((uint32_t)val & 0xf);
		uart_fill(d);
		uart_update(d);
		break;
	case 0x10:
		s->bauddiv = (uint32_t)val & 0xfffff;
		break;
	default:
		break;
	}
}

static void uart_reset(struct ms_rh_dev *d)
{
	struct uart_state *s = d->state;

	memset(s, 0, sizeof(*s));
	s->rx = -1;
}

static void uart_input_ready(struct ms_rh_dev *d)
{
	uart_fill(d);
}

/* ---- timer ---- */

static uint32_t timer_value(struct ms_rh_dev *d)
{
	struct timer_state *s = d->state;

	if (!(s->ctrl & 1))
		return s->value;
	return s->zero_at > d->m->icount ? (uint32_t)(s->zero_at - d->m->icount) : 0;
}

static void timer_irq(struct ms_rh_dev *d)
{
	struct timer_state *s = d->state;

	ms__rh_irq_level(d->m, d->irq[0], (s->intstatus & 1) && (s->ctrl & 8));
}

static uint64_t timer_next(struct ms_rh_dev *d)
{
	struct timer_state *s = d->state;

	if (!(s->ctrl & 1))
		return UINT64_MAX;
	return s->zero_at;
}

static void timer_event(struct ms_rh_dev *d)
{
	struct timer_state *s = d->state;
	uint64_t period = s->reload ? s->reload : 0x100000000ull;

	s->intstatus |= 1;
	timer_irq(d);
	s->zero_at += period;
	if (s->zero_at <= d->m->icount)
		s->zero_at = d->m->icount + period;
}

static uint64_t timer_read(struct ms_rh_dev *d, uint32_t off, unsigned size)
{
	struct timer_state *s = d->state;

	switch (off) {
	case 0x00:
		return s->ctrl;
	case 0x04:
		return timer_value(d);
	case 0x08:
		return s->reload;
	case 0x0c:
		return s->intstatus;
	default:
		return 0;
	}
}

static void timer_write(struct ms_rh_dev *d, uint32_t off, unsigned size, uint64_t val)
{
	struct timer_state *s = d->state;
	uint32_t v = (uint32_t)val;

	switch (off) {
	case 0x00: {
		uint32_t cur = timer_value(d);

		if ((v & 1) && !(s->ctrl & 1))
			s->zero_at = d->m->icount + (cur ? cur : (s->reload ? s->reload : 1));
		else if (!(v & 1) && (s->ctrl & 1))
			s->value = cur;
		s->ctrl = v & 0xf;
		timer_irq(d);
		break;
	}
	case 0x04:
		s->value = v;
		if (s->ctrl & 1)
			s->zero_at = d->m->icount + (v ? v : 1);
		break;
	case 0x08:
		s->reload = v;
		/* As in QEMU's model, writing RELOAD also reloads VALUE. */
		s->value = v;
		if (s->ctrl & 1)
			s->zero_at = d->m->icount + (v ? v : 1);
		break;
	case 0x0c:
		if (v & 1)
			s->intstatus = 0;
		timer_irq(d);
		break;
	default:
		break;
	}
	ms__rh_recompute_deadline(d->m);
}

static void timer_reset(struct ms_rh_dev *d)
{
	memset(d->state, 0, sizeof(struct timer_state));
}

/* ---- mapping ---- */

static uint64_t dev_read(uc_engine *uc, uint64_t offset, unsigned size, void *ud)
{
	struct ms_rh_dev *d = ud;
	uint32_t off = (uint32_t)offset;
	uint64_t v = d->read(d, off & ~3u, 4) >> (8 * (off & 3));

	if (size < 4)
		v &= (1ull << (8 * size)) - 1;
	return v;
}

static void dev_write(uc_engine *uc, uint64_t offset, unsigned size, uint64_t value, void *ud)
{
	struct ms_rh_dev *d = ud;

	d->write(d, (uint32_t)offset & ~3u, size, value << (8 * (offset & 3)));
}

int ms__rh_dev_create(struct ms_rh_machine *m, const struct ms_rh_board_dev *bd, struct ms_err *e)
{
	struct ms_rh_dev *d;
	int i;

	if (m->n_devs >= MS_RH_MAX_DEVS)
		return ms_fail(e, 400, "bad_board", "too many devices");
	d = &m->devs[m->n_devs];
	memset(d, 0, sizeof(*d));
	snprintf(d->name, sizeof(d->name), "%s", bd->name);
	snprintf(d->type, sizeof(d->type), "%s", bd->type);
	d->base = bd->base;
	d->size = 0x1000;
	d->m = m;
	d->console = bd->console;
	for (i = 0; i < 4; i++)
		d->irq[i] = i < bd->n_irqs ? bd->irqs[i] : -1;
	if (strcmp(bd->type, "cmsdk-uart") == 0) {
		d->state_size = sizeof(struct uart_state);
		d->read = uart_read;
		d->write = uart_write;
		d->reset = uart_reset;
		d->input_ready = uart_input_ready;
	} else if (strcmp(bd->type, "cmsdk-timer") == 0) {
		d->state_size = sizeof(struct timer_state);
		d->read = timer_read;
		d->write = timer_write;
		d->reset = timer_reset;
		d->next_event = timer_next;
		d->event = timer_event;
	} else {
		return ms_fail(e, 400, "bad_board",
		               "device %s: unknown type %s (known: cmsdk-uart, "
		               "cmsdk-timer)",
		               bd->name, bd->type);
	}
	d->state = calloc(1, d->state_size);
	if (d->state == NULL)
		return ms_fail(e, 500, "internal", "out of memory");
	d->reset(d);
	if (uc_mmio_map(m->uc, d->base, d->size, dev_read, d, dev_write, d) != UC_ERR_OK) {
		free(d->state);
		return ms_fail(e, 400, "bad_board", "device %s at 0x%08x cannot be mapped", d->name,
		               d->base);
	}
	m->n_devs++;
	return 0;
}
