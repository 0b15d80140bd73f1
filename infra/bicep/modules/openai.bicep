// Azure OpenAI: the account (Entra ID only) and the base model deployment the agents call. Fine-tuned
// models are deployed on this account by the loop at promotion (management plane, modules/identity.bicep).

@description('Account name; also its custom subdomain (the endpoint https://<name>.openai.azure.com/).')
param accountName string

@description('A region where fine-tuning of the base model is offered.')
param location string

param tags object = {}

@description('Enabled or Disabled; main.bicep refuses Disabled until private endpoints exist (README).')
@allowed([
  'Enabled'
  'Disabled'
])
param publicNetworkAccess string

@description('Name of the base model deployment (AZURE_OPENAI_DEPLOYMENT).')
param deploymentName string

@description('Base model and version.')
param modelName string = 'gpt-4o-mini'
param modelVersion string

@description('SKU and capacity (thousands of tokens per minute) of the base deployment.')
param deploymentSku string
@minValue(1)
param deploymentCapacity int

resource openAi 'Microsoft.CognitiveServices/accounts@2024-10-01' = {
  name: accountName
  location: location
  tags: tags
  kind: 'OpenAI'
  sku: {
    name: 'S0'
  }
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    customSubDomainName: accountName
    disableLocalAuth: true
    publicNetworkAccess: publicNetworkAccess
    networkAcls: {
      defaultAction: (publicNetworkAccess == 'Enabled') ? 'Allow' : 'Deny'
    }
  }
}

resource baseDeployment 'Microsoft.CognitiveServices/accounts/deployments@2024-10-01' = {
  parent: openAi
  name: deploymentName
  sku: {
    name: deploymentSku
    capacity: deploymentCapacity
  }
  properties: {
    model: {
      format: 'OpenAI'
      name: modelName
      version: modelVersion
    }
  }
}

output name string = openAi.name
output endpoint string = openAi.properties.endpoint
output deploymentName string = baseDeployment.name
