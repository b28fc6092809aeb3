from django import forms
from django.contrib.auth.forms import UserCreationForm
from django.contrib.auth.models import User

from league.services import ALIAS_REGEX, ALIAS_RULES


class SignUpForm(UserCreationForm):
    email = forms.EmailField(required=False, help_text="Optional: only used to reset your password.")

    class Meta(UserCreationForm.Meta):
        model = User
        fields = ("username", "email")


class AliasForm(forms.Form):
    alias = forms.CharField(
        max_length=32,
        help_text=f"Your name on every leaderboard, {ALIAS_RULES}. It cannot be changed later.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "autofocus": True, "pattern": ALIAS_REGEX}),
    )
