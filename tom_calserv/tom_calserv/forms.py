from typing import ClassVar

from django import forms

from tom_calserv.models import CalservProfile


class KeyForm(forms.ModelForm):
    """The user's calserv key; a blank submission keeps the stored one (EncryptedFormField)."""

    class Meta:
        model = CalservProfile
        fields = ("api_key",)
        labels: ClassVar = {"api_key": "calserv key (your observatory's hashtag)"}


class CalibrateForm(forms.Form):
    """A new frame to upload, or one of the target's data products, and when it was taken."""

    file = forms.FileField(
        required=False, help_text="a SExtractor catalogue, an RA/DEC/MAG table or a FITS image"
    )
    data_product = forms.IntegerField(required=False, widget=forms.HiddenInput)
    mjd = forms.FloatField(
        required=False,
        help_text="MJD of the exposure (UTC); FITS images may leave it to MJD-OBS/DATE-OBS",
    )
    exptime = forms.FloatField(required=False, min_value=0, help_text="exposure time, s")

    def clean(self):
        data = super().clean()
        if not data.get("file") and not data.get("data_product"):
            raise forms.ValidationError("upload a frame or choose one of the target's")
        return data
