/* station/device_ymodem.c: plain YMODEM targets (U-Boot's loady, lrzsz's
 * rb; devices.md "Serial").  They know no console, so who they are comes
 * from their [port] section, and an install on them has no proof. */
#include "station/device_internal.h"

#include <stdio.h>

#include "station/base/error.h"

static int ymodem_open(struct stn_device *dev, const struct stn_config *cfg,
		       struct stn_diag *d)
{
	const struct stn_port *p;
	unsigned baud;
	int rtscts, rc;

	if ((rc = stn_device_port(dev, cfg, STN_PORT_YMODEM, &p, &baud,
				  &rtscts, d)))
		return rc;
	if (!p || !p->serial)
		return stn_fail(d, STN_E_IDENTITY, dev->name,
				"a plain YMODEM target cannot report its "
				"identity: configure a [port] section with "
				"path = %s, model and serial", dev->rest);
	return stn_device_line_open(dev, cfg, STN_PORT_YMODEM, d);
}

/* config.c held model, serial and hardware to the identity rules. */
static int ymodem_identify(struct stn_device *dev, struct cu_identity *id,
			   struct stn_diag *d)
{
	struct stn_serial_line *line = stn_device_priv(dev);
	const struct stn_port *p = line->port;
	char where[300];

	snprintf(where, sizeof(where), "[port %.200s] in configuration",
		 p->label);
	return cu_identity_set(id, p->model, p->hardware, p->serial, NULL,
			       where, d);
}

static int ymodem_write(struct stn_device *dev,
			const struct stn_image_send *s,
			struct stn_write_result *r, struct stn_diag *d)
{
	struct stn_serial_line *line = stn_device_priv(dev);

	r->proof = STN_PROOF_NONE; /* it cannot say what it stored */
	return tp_ymodem_send(line->serial, s->img->file, s->img->size,
			      s->src, NULL, s->prog, d);
}

const struct stn_device_ops stn_device_ymodem_ops = {
	.scheme = "ymodem",
	.transport = "ymodem",
	.priv_size = sizeof(struct stn_serial_line),
	.spec_check = stn_device_path_check,
	.open = ymodem_open,
	.identify = ymodem_identify,
	.write = ymodem_write,
	.cannot_prove = 1, /* no read-back, no digest, no receipt */
	.boot = NULL, /* no command to start an image: nothing to do */
	.close = stn_device_line_close,
};
