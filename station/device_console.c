/* station/device_console.c: station-aware serial devices (devices.md
 * "Serial: console plus YMODEM"): they say who they are with `info`, take
 * an image with `receive` and YMODEM, and report the SHA-256 of what they
 * stored; those that hold a device key also attest, take an install
 * authorization and sign a receipt for each image (formats §9). */
#include "station/device_internal.h"

#include <stdlib.h>
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
				  r->device_sha256, s->receipt, s->has_receipt,
				  d);
}

static int console_attest(struct stn_device *dev, const uint8_t *nonce,
			  struct tp_signed_msg *out, struct stn_diag *d)
{
	struct stn_serial_line *line = stn_device_priv(dev);

	return tp_console_attest(line->serial, nonce, out, d);
}

/* devices.md: `authorize`, the record lines, `sig`, `cert`s, `end`, each
 * line ended CR LF as every console line is. */
static int console_authorize(struct stn_device *dev,
			     const struct tp_signed_msg *authz,
			     struct stn_diag *d)
{
	struct stn_serial_line *line = stn_device_priv(dev);
	char *lines = NULL;
	size_t len = 0;
	int rc = tp_msg_format(authz, "\r\n", &lines, &len, d);

	if (!rc)
		rc = tp_console_authorize(line->serial, lines, len, d);
	free(lines);
	return rc;
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
	.attest = console_attest,
	.authorize = console_authorize,
	.boot = console_boot,
	.close = stn_device_line_close,
};
