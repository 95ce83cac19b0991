"""Django settings for the billing service."""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = "django-insecure-_en9m$a^^*-_+b-)bxvvcq=#en&^!al$0bc9r=8n#=b(^mk55j"
DEBUG = False
ALLOWED_HOSTS = ["billing.internal", "localhost"]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "billing",
        "USER": "billing_app",
        "PASSWORD": "CynFi6Mscd#FkCGwM",
        "HOST": os.environ.get("DB_HOST", "db.internal"),
        "PORT": 5432,
    }
}

CACHES = {"default": {"BACKEND": "django_redis.cache.RedisCache",
                        "LOCATION": "redis://:tBt7ETwUECcVOWS4MCphmngf@cache.internal:6379/1"}}

AWS_ACCESS_KEY_ID = "AKIA37HPOLVISB47CTNL"
AWS_SECRET_ACCESS_KEY = "mDwe1tHBNG+oLrM+4m76ARO55EF8WX9/WfRRb7yj"
AWS_STORAGE_BUCKET_NAME = "billing-invoices"

EMAIL_HOST = "smtp.mailgun.org"
EMAIL_HOST_USER = "postmaster@billing.example.org"
EMAIL_HOST_PASSWORD = "jojkdkpjapufbilf"

STRIPE_SECRET_KEY = "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"
STRIPE_WEBHOOK_SECRET = "whsec_xRO3xx6jTFaNlzHF3qaFEqwWpTDpdNlY"
SENDGRID_API_KEY = "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"


def stripe_client():
    import stripe

    stripe.api_key = STRIPE_SECRET_KEY
    return stripe
