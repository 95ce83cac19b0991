# Deploy hooks for the storefront.
require "stripe"
require "net/http"

Stripe.api_key = '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'

SLACK_WEBHOOK = "https://hooks.slack.com/services/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"

DATABASE = {
  adapter: "postgresql",
  host: "db.internal",
  username: "storefront",
  :password => 'WpFdZ6lHYVsu$vsiz',
}

def notify(text)
  Net::HTTP.post(URI(SLACK_WEBHOOK), { text: text }.to_json)
end

class Deployer
  def initialize
    @github_token = "b2d368b026d08ecb7b9a6238dd0b9a6f9e345f6b"
  end
end
