import axios from "axios";

export const firebaseConfig = {
  apiKey: "AIzaM89I1z7dDoiwRS9ozF15k-RKame6CtaOX9o",
  authDomain: "shop-prod.firebaseapp.com",
  projectId: "shop-prod",
};

const GITLAB_TOKEN: string = "glpat-5oGLy1x1v-vKhD9Q2b8E";
const ANTHROPIC_API_KEY = "sk-ant-api03-6qVR3-b0oS1x_j_j1e4bvdYBpkBo-EvAU80BATb_zCGH7SIPO9wt91zk3hj-g-zHZWB6DaLMmFkujfT8FrONRkdbdvOsCAA";

export class OAuthClient {
  private readonly clientId = "shop-web";
  private readonly clientSecret: string = "tYkiYEAWQgshNMrsHz3sSsOjIuMDKQBIu5";

  async token(): Promise<string> {
    const res = await axios.post("https://auth.internal/token", {
      client_id: this.clientId,
      client_secret: this.clientSecret,
    });
    return res.data.access_token;
  }
}

export async function pipelines(project: number) {
  return axios.get(`https://gitlab.com/api/v4/projects/${project}/pipelines`, {
    headers: { "PRIVATE-TOKEN": GITLAB_TOKEN },
  });
}

export const fineGrained = "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";
