from django.apps import AppConfig
from django.urls import include, path


class TomCalservConfig(AppConfig):
    """Hooks into the TOM: a key card on the user's profile, a button on the target's page."""

    name = "tom_calserv"
    default_auto_field = "django.db.models.BigAutoField"

    def include_url_paths(self):
        return [path("calserv/", include("tom_calserv.urls", namespace="tom_calserv"))]

    def profile_details(self):
        return [
            {
                "partial": "tom_calserv/partials/profile_card.html",
                "context": "tom_calserv.views.profile_card_context",
            }
        ]

    def target_detail_buttons(self):
        return [
            {
                "partial": "tom_calserv/partials/target_button.html",
                "context": "tom_calserv.views.target_button_context",
            }
        ]
