from django.contrib import admin

from league.models import RacerProfile


@admin.register(RacerProfile)
class RacerProfileAdmin(admin.ModelAdmin):
    list_display = ("alias", "user", "created_at")
    search_fields = ("alias", "user__username", "user__email")
    readonly_fields = ("alias", "user", "created_at")

    def has_add_permission(self, request) -> bool:
        # Aliases are chosen by racers themselves through league.services.racer_set_alias.
        return False
