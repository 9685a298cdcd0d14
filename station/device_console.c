/* station/device_console.c: station-aware serial devices (devices.md
 * "Serial: console plus YMODEM"): they say who they are with `info`, take
 * an image with `receive` and YMODEM, and report the SHA-256 of what they
 * stored. */
#include "station/device_internal.h"

#include <string.h>

#include "transport/console.h"

static int console_open(struct stn_device *dev, const struct stn_config *cfg,
			struct stn_diag *d)
{
	return stn_device_line_open(dev, cfg, STN_PORT_CONSOLE, d);
}

static int console_identify(struct stn_device *dev, struct cu_identity *id,
			    struct stn_diag *d)
{
	struct stn_serial_line *line = stn_device_priv(dev);
	char text[8192];
	int rc;

	if ((rc = tp_console_info(line->serial, text, sizeof(text), d)))
		return rc;
	return cu_identity_parse(text, strlen(text), dev->name, id, d);
}

static int console_write(struct stn_device *dev,
			 const struct stn_image_send *s,
			 struct stn_write_result *r, struct stn_diag *d)
{
	struct stn_serial_line *line = stn_device_priv(dev);

	r->proof = STN_PROOF_DEVICE_SHA;
	return tp_console_receive(line->serial, s->img->slot, s->img->file,
				  s->img->size, s->src, s->prog,
				  r->device_sha256, d);
}

static int console_boot(struct stn_device *dev, struct stn_diag *d)
{
	struct stn_serial_line *line = stn_device_priv(dev);

	return tp_console_boot(line->serial, d);
}

const struct stn_device_ops stn_device_console_ops = {
	.scheme = "serial",
	.transport = "serial-console",
	.priv_size = sizeof(struct stn_serial_line),
	.spec_check = stn_device_path_check,
	.open = console_open,
	.identify = console_identify,
	.write = console_write,
	.boot = console_boot,
	.close = stn_device_line_close,
};
