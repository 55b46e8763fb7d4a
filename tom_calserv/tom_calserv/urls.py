from django.urls import path

from tom_calserv.views import KeyView, TargetCalibrateView

app_name = "tom_calserv"

urlpatterns = [
    path("key/", KeyView.as_view(), name="key"),
    path("targets/<int:pk>/", TargetCalibrateView.as_view(), name="target"),
]
