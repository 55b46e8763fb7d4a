"""A TOM user's calserv key (encrypted at rest), and each calibration a user asked for."""

from django.conf import settings
from django.db import models
from tom_common.encryption import EncryptedModelField
from tom_dataproducts.models import DataProduct, PhotometryReducedDatum


class CalservProfile(models.Model):
    """The user's calserv key (its "hashtag"): the TOM's per-user setting, never in code."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    api_key = EncryptedModelField(null=True, blank=True)


class CalservCalibration(models.Model):
    """One frame sent to calserv: its job, how it ended and the photometry it made."""

    data_product = models.ForeignKey(DataProduct, on_delete=models.CASCADE)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    mjd = models.FloatField()
    exptime = models.FloatField(null=True, blank=True)
    alert = models.CharField(max_length=300, blank=True, default="")
    job_url = models.URLField(max_length=500, blank=True, default="")
    status = models.CharField(max_length=20, default="queued")
    error = models.TextField(blank=True, default="")
    datum = models.ForeignKey(
        PhotometryReducedDatum, null=True, blank=True, on_delete=models.SET_NULL
    )
    created = models.DateTimeField(auto_now_add=True)
    modified = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("-created",)
