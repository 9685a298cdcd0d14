/* station/device_fake.c: the test device behind station/device_fake.h.
 * It speaks no protocol: it reads the image from the source the core
 * hands every backend, keeps it, and answers with the faults it was given.
 * Each open device touches only its own unit, so installs on different
 * units may run at once. */
#include "station/device_fake.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "station/base/hex.h"
#include "station/base/sha256.h"
#include "station/device_internal.h"
#include "station/base/error.h"

#define MAX_UNITS 16
static struct stn_fake_unit *units[MAX_UNITS];
static size_t nunits;

struct fake_dev {
	struct stn_fake_unit *u;
};

static struct stn_fake_unit *unit_of(struct stn_device *dev)
{
	return ((struct fake_dev *)stn_device_priv(dev))->u;
}

void stn_fake_unit_init(struct stn_fake_unit *u, const char *name,
			const char *model, const char *hardware,
			const char *serial)
{
	memset(u, 0, sizeof(*u));
	snprintf(u->name, sizeof(u->name), "%s", name);
	snprintf(u->id.model, sizeof(u->id.model), "%s", model);
	snprintf(u->id.hardware, sizeof(u->id.hardware), "%s",
		 hardware ? hardware : "");
	snprintf(u->id.serial, sizeof(u->id.serial), "%s", serial);
	u->images_before_fail = -1;
	u->bytes_before_fail = -1;
	u->wrong_digest_image = -1;
	for (size_t i = 0; i < CU_MAX_IMAGES; i++)
		u->proof[i] = STN_PROOF_DEVICE_SHA;
}

void stn_fake_unit_fini(struct stn_fake_unit *u)
{
	if (!u)
		return;
	for (size_t i = 0; i < CU_MAX_IMAGES; i++)
		free(u->got[i].data);
	memset(u->got, 0, sizeof(u->got));
}

static int fake_spec_check(const char *spec, const char *rest,
			   struct stn_diag *d)
{
	if (!rest[0] || strlen(rest) >= sizeof(units[0]->name))
		return stn_fail(d, STN_E_USAGE, spec,
				"fake SPEC must be fake:NAME");
	return 0;
}

static int fake_open(struct stn_device *dev, const struct stn_config *cfg,
		     struct stn_diag *d)
{
	struct fake_dev *fd = stn_device_priv(dev);

	(void)cfg;
	for (size_t i = 0; i < nunits; i++)
		if (strcmp(units[i]->name, dev->rest) == 0)
			fd->u = units[i];
	if (!fd->u)
		return stn_fail(d, STN_E_NODEVICE, dev->name,
				"no fake unit %s is attached", dev->rest);
	fd->u->opened++;
	return 0;
}

static int fake_identify(struct stn_device *dev, struct cu_identity *id,
			 struct stn_diag *d)
{
	struct stn_fake_unit *u = unit_of(dev);

	if (u->fail_identify)
		return stn_fail(d, STN_E_PROTOCOL, dev->name,
				"fault: identify fails");
	u->identified++;
	*id = u->id;
	return 0;
}

/* Read the whole image (or up to the byte fault) into the unit. */
static int fake_write(struct stn_device *dev, const struct stn_image_send *s,
		      struct stn_write_result *r, struct stn_diag *d)
{
	struct stn_fake_unit *u = unit_of(dev);
	size_t idx = u->writes++;
	int failing = u->images_before_fail >= 0 &&
		      idx >= (size_t)u->images_before_fail;
	uint64_t limit = s->img->size;
	struct stn_fake_image *g;
	uint8_t digest[CU_SHA256_LEN];
	int rc;

	if (idx >= CU_MAX_IMAGES)
		return stn_fail(d, STN_E_INTERNAL, dev->name,
				"more writes than a bundle has images");
	if (failing && u->bytes_before_fail >= 0 &&
	    (uint64_t)u->bytes_before_fail < limit)
		limit = (uint64_t)u->bytes_before_fail;
	g = &u->got[idx];
	g->slot = s->img->slot;
	snprintf(g->file, sizeof(g->file), "%s", s->img->file);
	g->data = malloc(s->img->size ? s->img->size : 1);
	if (!g->data)
		return stn_fail(d, STN_E_NOMEM, dev->name, "fake image");
	while (g->len < limit) {
		size_t got = 0;

		if ((rc = s->src->read(s->src->ctx, g->data + g->len,
				       (size_t)(limit - g->len), &got)))
			return rc;
		if (got == 0)
			break;
		g->len += got;
		if (s->prog && s->prog->update)
			s->prog->update(s->prog->ctx, g->len, s->img->size);
	}
	if (failing)
		return stn_fail(d, STN_E_IO, dev->name,
				"fault: the line dropped after %zu bytes of "
				"image %s", g->len, s->img->label);
	r->proof = u->proof[idx];
	if (cu_sha256(g->data, g->len, digest))
		return stn_fail(d, STN_E_IO, dev->name, "fault: hashing failed");
	if ((int)idx == u->wrong_digest_image)
		digest[0] ^= 0x01;
	cu_hex(digest, sizeof(digest), r->device_sha256);
	return 0;
}

static int fake_boot(struct stn_device *dev, struct stn_diag *d)
{
	struct stn_fake_unit *u = unit_of(dev);

	if (u->fail_boot)
		return stn_fail(d, STN_E_DEVICE, dev->name,
				"fault: the new image does not start");
	u->booted++;
	return 0;
}

static const struct stn_device_ops fake_ops = {
	.scheme = "fake",
	.transport = "fake",
	.priv_size = sizeof(struct fake_dev),
	.spec_check = fake_spec_check,
	.open = fake_open,
	.identify = fake_identify,
	.write = fake_write,
	.boot = fake_boot,
	.close = NULL,
};

int stn_fake_register(struct stn_diag *d)
{
	return stn_device_register(&fake_ops, d);
}

int stn_fake_attach(struct stn_fake_unit *u, struct stn_diag *d)
{
	if (nunits == MAX_UNITS)
		return stn_fail(d, STN_E_USAGE, u->name, "too many fake units");
	units[nunits++] = u;
	return 0;
}

void stn_fake_detach_all(void)
{
	nunits = 0;
}
