"""The user's key form, and a target's "calibrate with calserv" page."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views import View
from django.views.generic.edit import FormView
from tom_dataproducts.models import DataProduct
from tom_targets.models import Target
from tom_targets.permissions import targets_for_user

from tom_calserv.calibrate import calibrate, refresh
from tom_calserv.forms import CalibrateForm, KeyForm
from tom_calserv.models import CalservCalibration, CalservProfile

#: The data product type of frames uploaded here (a TOM's DATA_PRODUCT_TYPES names it too).
FRAME_TYPE = "calserv_frame"


def profile_card_context(user) -> dict:
    profile = CalservProfile.objects.filter(user=user).first()
    return {"has_key": bool(profile and profile.api_key)}


def target_button_context(context) -> dict:
    return {"target": context["target"]}


class KeyView(LoginRequiredMixin, FormView):
    template_name = "tom_calserv/key.html"
    form_class = KeyForm

    def get_form_kwargs(self):
        kwargs = super().get_form_kwargs()
        kwargs["instance"], _ = CalservProfile.objects.get_or_create(user=self.request.user)
        return kwargs

    def form_valid(self, form):
        form.save()
        messages.success(self.request, "calserv key saved")
        return redirect("user-profile")


def frame_mjd(data_product: DataProduct) -> float | None:
    """MJD-OBS or DATE-OBS of a FITS frame's header; None for other files."""
    from astropy.io import fits
    from astropy.time import Time

    try:
        with data_product.data.open("rb") as f, fits.open(f) as hdus:
            for hdu in hdus:
                if "MJD-OBS" in hdu.header:
                    return float(hdu.header["MJD-OBS"])
                if "DATE-OBS" in hdu.header:
                    return float(Time(hdu.header["DATE-OBS"], scale="utc").mjd)
    except (OSError, ValueError):
        return None
    return None


class TargetCalibrateView(LoginRequiredMixin, View):
    """The target's frames and their calibrations; POST uploads or picks one and calibrates it."""

    def target(self, request, pk: int) -> Target:
        qs = targets_for_user(request.user, Target.objects.filter(pk=pk), "view_target")
        target = qs.first()
        if target is None:
            raise Http404("no such target")
        return target

    def page(self, request, target: Target, form: CalibrateForm, status: int = 200):
        frames = DataProduct.objects.filter(target=target).order_by("-created")
        calibrations = list(CalservCalibration.objects.filter(data_product__target=target)[:50])
        for record in calibrations:  # a job that outlasted its request: has it ended since?
            if record.status not in ("succeeded", "failed") and record.job_url:
                refresh(record)
        context = {"target": target, "form": form, "frames": frames, "calibrations": calibrations}
        return render(request, "tom_calserv/target.html", context, status=status)

    def get(self, request, pk: int):
        return self.page(request, self.target(request, pk), CalibrateForm())

    def post(self, request, pk: int):
        target = self.target(request, pk)
        form = CalibrateForm(request.POST, request.FILES)
        if not form.is_valid():
            return self.page(request, target, form, status=400)
        if form.cleaned_data["file"]:
            dp = DataProduct(target=target, data=form.cleaned_data["file"], product_id=None)
            dp.data_product_type = FRAME_TYPE
            dp.save()
        else:
            dp = DataProduct.objects.filter(
                target=target, pk=form.cleaned_data["data_product"]
            ).first()
            if dp is None:
                form.add_error("data_product", "not a data product of this target")
                return self.page(request, target, form, status=400)
        mjd = form.cleaned_data["mjd"]
        if mjd is None:
            mjd = frame_mjd(dp)
        if mjd is None:
            form.add_error("mjd", "give the MJD of the exposure (the file has none)")
            return self.page(request, target, form, status=400)
        record = calibrate(dp, request.user, mjd, form.cleaned_data["exptime"])
        if record.status == "succeeded":
            d = record.datum
            shown = f"> {d.limit:.3f}" if d.limit is not None else f"{d.brightness:.3f}"
            messages.success(request, f"calserv: {d.bandpass} = {shown} ({record.job_url})")
        elif record.status == "failed":
            messages.error(request, f"calserv could not calibrate {dp}: {record.error}")
        else:
            messages.info(request, f"calserv is still working on it: {record.job_url}")
        return redirect(reverse("tom_calserv:target", kwargs={"pk": target.pk}))
